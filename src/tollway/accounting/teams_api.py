"""The admin API's team routes: list, read, create, change and delete teams and their budgets.

  GET    /admin/teams                every team, from the config ("source": "config") and the store
  POST   /admin/teams                {"name", "budgets": [{window, limit_usd, model?, per_user?}], "rpm", "tpm"} -> 201
  GET    /admin/teams/{name}         one team
  PATCH  /admin/teams/{name}         change the fields given (`budgets` replaces the list; null clears rpm/tpm)
  DELETE /admin/teams/{name}         delete a stored team (its keys keep their own budgets)

A team in the config file is changed there (409 `team_in_config`), never here: see teams.py. A write
takes effect on this replica at once and on the others at their next key refresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tollway.accounting.admin_api import error_reply, json_reply, read_json
from tollway.accounting.keys.store import TeamNotFound
from tollway.accounting.teams import config_team_public, new_team, team_spec_from_json

if TYPE_CHECKING:
    from tollway.accounting.admin_api import AdminApi


class TeamRoutes:
    def __init__(self, api: AdminApi) -> None:
        self.api = api

    def routes(self) -> list[web.RouteDef]:
        guard = self.api.guarded
        return [
            web.get("/admin/teams", guard(self.list_teams)),
            web.post("/admin/teams", guard(self.create_team)),
            web.get("/admin/teams/{name}", guard(self.get_team)),
            web.patch("/admin/teams/{name}", guard(self.update_team)),
            web.delete("/admin/teams/{name}", guard(self.delete_team)),
        ]

    @property
    def _config_teams(self) -> dict:
        return self.api.admission.config.teams

    @property
    def _models(self) -> list[str]:
        return list(self.api.admission.holds.groups)

    async def list_teams(self, request: web.Request) -> web.Response:
        stored = [t.public() for t in await self.api.call("list_teams") if t.name not in self._config_teams]
        configured = [config_team_public(name, team) for name, team in self._config_teams.items()]
        return json_reply({"object": "list", "data": sorted(configured + stored, key=lambda t: t["name"])})

    async def create_team(self, request: web.Request) -> web.Response:
        name, spec = team_spec_from_json(await read_json(request), self._models, creating=True)
        assert name is not None  # team_spec_from_json requires it when creating
        if name in self._config_teams:
            return _in_config(name)
        record = await self.api.call("create_team", new_team(name, spec))
        self.api.admission.teams_changed([record])
        return json_reply(record.public(), 201)

    async def get_team(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self._config_teams:
            return json_reply(config_team_public(name, self._config_teams[name]))
        record = await self.api.call("get_team", name)
        if record is None:
            raise TeamNotFound(name)
        return json_reply(record.public())

    async def update_team(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self._config_teams:
            return _in_config(name)
        given, spec = team_spec_from_json(await read_json(request), self._models, creating=False)
        if given is not None and given != name:
            return error_reply(400, f"name: a team cannot be renamed ({name!r} -> {given!r}); create a new one",
                               "invalid_field")
        record = await self.api.call("update_team", name, spec)
        self.api.admission.teams_changed([record])
        return json_reply(record.public())

    async def delete_team(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self._config_teams:
            return _in_config(name)
        record = await self.api.call("delete_team", name)
        self.api.admission.teams_changed([record])
        return json_reply({"name": record.name, "deleted": True})


def _in_config(name: str) -> web.Response:
    return error_reply(409, f"team {name!r} is defined in the config file (teams.{name}); change it there and "
                            "reload", "team_in_config")

