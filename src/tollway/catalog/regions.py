"""Which provider region a deployment is served from, for prices that differ by region.

Alibaba Cloud Model Studio (DashScope, Qwen) lists different prices in Beijing (mainland China, CNY) and
Singapore (international, USD), and an API key works only in its own region, so the base URL says where a
request is billed. Region names are Alibaba Cloud's region ids; the catalog's `region:` rows use the same.
Hosts (https://www.alibabacloud.com/help/en/model-studio/base-url, Oct 2026):

  dashscope.aliyuncs.com                 cn-beijing
  dashscope-intl.aliyuncs.com            ap-southeast-1 (Singapore)
  dashscope-us.aliyuncs.com              us-east-1 (Virginia)
  cn-hongkong.dashscope.aliyuncs.com     cn-hongkong
  {workspace}.{region}.maas.aliyuncs.com {region}

A provider's own `region:` in tollway.yaml wins over the host (a proxy's URL says nothing about where the
proxy sends the request).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DASHSCOPE_HOSTS = {
    "dashscope.aliyuncs.com": "cn-beijing",
    "dashscope-intl.aliyuncs.com": "ap-southeast-1",
    "dashscope-us.aliyuncs.com": "us-east-1",
    "cn-hongkong.dashscope.aliyuncs.com": "cn-hongkong",
}
_WORKSPACE_HOST = re.compile(r"^[^.]+\.([a-z0-9-]+)\.maas\.aliyuncs\.com$")


def region_of(region: str | None, base_url: str | None) -> str | None:
    """The deployment's region: its configured `region`, else what its base URL's host says, else None."""
    if region:
        return region.strip().lower()
    if not base_url:
        return None
    host = (urlsplit(base_url).hostname or "").lower()
    found = _DASHSCOPE_HOSTS.get(host)
    if found is not None:
        return found
    workspace = _WORKSPACE_HOST.match(host)
    return workspace.group(1) if workspace else None
