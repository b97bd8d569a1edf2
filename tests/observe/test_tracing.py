"""With an OTLP endpoint configured, each request is one span with a child span per upstream attempt."""

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.gateway.support import PROVIDER_KEYS, chat
from tests.observe.support import ADMIN_KEY, observed_config
from tests.processes import free_port

trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2",
                                    reason="tracing is optional: pip install opentelemetry-sdk "
                                           "opentelemetry-exporter-otlp-proto-http")
pytestmark = pytest.mark.slow


class OtlpReceiver:
    """A loopback OTLP/HTTP trace collector that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = trace_service.ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        receiver.spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(trace_service.ExportTraceServiceResponse().SerializeToString())

            def log_message(self, *args) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def attributes(span) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def test_request_and_attempt_spans(emulator_factory, gateway_factory):
    receiver = OtlpReceiver()
    try:
        emu = emulator_factory({"models": {"deepseek-flash": {"faults": [{"kind": "server_error", "first": 2}]}}})
        config = observed_config(emu, observe={"tracing": {"otlp_endpoint": f"http://127.0.0.1:{receiver.port}/v1/traces"}})
        gw = gateway_factory(config, env={**PROVIDER_KEYS, "TOLLWAY_ADMIN_KEY": ADMIN_KEY})
        raw = gw.client().chat.completions.with_raw_response.create(**chat())
        request_id = raw.headers["x-request-id"]
        deadline = time.monotonic() + 15
        while len(receiver.spans) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        receiver.server.shutdown()
    roots = [s for s in receiver.spans if not s.parent_span_id]
    assert len(roots) == 1 and roots[0].name == "chat chat"
    root = attributes(roots[0])
    assert (root["tollway.request_id"], root["tollway.deployment"], root["tollway.status"]) == (request_id, "qwen-plus", "ok")
    children = sorted((s for s in receiver.spans if s.parent_span_id == roots[0].span_id),
                      key=lambda s: s.start_time_unix_nano)
    assert [(attributes(c)["tollway.deployment"], attributes(c)["tollway.outcome"]) for c in children] == [
        ("ds-flash", "retry"), ("ds-flash", "failover"), ("qwen-plus", "ok")]
    assert all(c.trace_id == roots[0].trace_id for c in children)
    assert roots[0].end_time_unix_nano >= children[-1].end_time_unix_nano
