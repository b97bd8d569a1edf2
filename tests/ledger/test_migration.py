"""A ledger file written by an older tollway gains the new columns when opened; its rows stay readable."""

import sqlite3

from tollway.ledger.schema import ADDED_COLUMNS, CREATE_TABLE_SQL, LEDGER_COLUMNS
from tollway.ledger.sqlite import open_sqlite


def test_old_ledger_file_gains_added_columns(tmp_path):
    path = tmp_path / "old.db"
    old_sql = CREATE_TABLE_SQL
    for name, definition in ADDED_COLUMNS:
        old_sql = old_sql.replace(f",\n  {name} {definition}", "")
    conn = sqlite3.connect(path)
    conn.executescript(old_sql)
    assert {r[1] for r in conn.execute("PRAGMA table_info(requests)")} == set(LEDGER_COLUMNS) - {n for n, _ in ADDED_COLUMNS}
    conn.execute("INSERT INTO requests (id, ts, endpoint, requested_model, status, http_status, cost_usd) "
                 "VALUES ('r1', '2026-11-01T00:00:00+00:00', 'chat', 'chat', 'ok', 200, '0.5')")
    conn.commit()
    conn.close()

    upgraded = open_sqlite(path)
    columns = [r[1] for r in upgraded.execute("PRAGMA table_info(requests)")]
    assert set(columns) == set(LEDGER_COLUMNS)
    assert upgraded.execute("SELECT cost_usd, priced, system_fingerprint, request_features FROM requests").fetchall() \
        == [("0.5", 1, "", "{}")]
    upgraded.close()
    open_sqlite(path).close()  # opening again changes nothing
