// Money for people to read, the rule of tollway/core/money_text.py: cents from a cent up ($12.34, $1,234.57),
// three significant digits below ($0.00123), $0.00 for zero, half-up rounding. Costs arrive as exact
// decimal strings and are rounded here as decimals (BigInt), never through a float, so the page shows
// the same figure as `tollway usage` and `tollway report`.
"use strict";

function usd(text) {
  const match = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(String(text).trim());
  if (!match) return String(text);
  const [, sign, whole, fraction = "", exponent = "0"] = match;
  let digits = (whole + fraction).replace(/^0+/, "") || "0";
  let scale = fraction.length - Number(exponent);  // value = digits x 10^-scale
  if (scale < 0) { digits += "0".repeat(-scale); scale = 0; }
  const value = BigInt(digits);
  const minus = sign && value > 0n ? "-" : "";
  const unit = 10n ** BigInt(scale);
  if (value === 0n || value * 100n >= unit) return minus + "$" + cents(roundHalfUp(value * 100n, unit));
  const keep = BigInt(digits.length - 3);  // drop all but three significant digits
  const kept = keep > 0n ? roundHalfUp(value, 10n ** keep) : value;
  const keptScale = scale - Number(keep > 0n ? keep : 0n);
  if (kept * 100n >= 10n ** BigInt(keptScale)) return minus + "$0.01";  // rounded up to a cent
  const padded = kept.toString().padStart(keptScale, "0");
  return minus + "$0." + padded.replace(/0+$/, "");
}

function roundHalfUp(numerator, denominator) {
  return (2n * numerator + denominator) / (2n * denominator);
}

function cents(count) {
  const text = count.toString().padStart(3, "0");
  const dollars = text.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return dollars + "." + text.slice(-2);
}
