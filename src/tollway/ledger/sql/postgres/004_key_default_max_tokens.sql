-- A key's default max_tokens: sent upstream for requests that set none, so the budget hold is that many
-- output tokens, not the deployment's whole max_output (small budgets stay usable and exact).
ALTER TABLE keys ADD COLUMN IF NOT EXISTS default_max_tokens INTEGER;
