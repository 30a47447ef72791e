# greenkfp carbon-budget policy: may a pipeline submission spend a team's carbon budget?
#
# Evaluated in-process (regorus) or by an OPA server (POST /v1/data/greenkfp/budget/decision
# with {"input": ...}). Replace this file to change the rules (--policy-file, or load your own
# file into OPA); keep the package, the rule name and the decision's shape.
#
# Input (grams of CO2eq; every field is required unless marked optional):
#   team               non-empty string (at most 128 characters)
#   tier               "hard" or "soft"
#   period             "YYYY-MM", the budget's calendar month (UTC)
#   estimate_g         the submission's estimated emissions, 0 to 1e15
#   limit_g            the team's limit for the period, 0 to 1e15
#   reserved_g         reserved by runs not yet settled, 0 to 1e15
#   settled_g          spent by finished runs, 0 to 1e15
#   remaining_g        what is left, -1e15 to 1e15 (below 0 once a soft budget is overdrawn)
#   overdraft_percent  0 to 100; the soft tier's overdraft as a share of limit_g (hard: unused)
#   pipeline           non-empty string (at most 256 characters)
#   labels             object of string values (the submission's labels)
#   exceptions         array of {"id": non-empty string (at most 128 characters), "amount_g":
#                      0 to 1e15, "expires_at": RFC 3339 timestamp, "run_id": string (at most
#                      256 characters), optional: null or absent means the exception is for the
#                      whole team}
#   run_id             optional: the submission's run id, at most 256 characters (null or
#                      absent: none yet)
#   now                RFC 3339 timestamp (the moment of the decision)
#
# Decision (always defined, rule `decision`):
#   {"allow": bool, "reasons": [string, ...], "review_required": bool,
#    "overdraft_allowed_g": number}
#   overdraft_allowed_g is how far below zero the ledger may take remaining_g (after the open
#   exceptions) for this team: limit_g x overdraft_percent / 100 for the soft tier, 0 for hard.
#
# Rules:
#   1. Malformed input (a field missing, of the wrong type or out of range) is refused, with one
#      reason per bad field naming it. The policy never allows on malformed input.
#   2. Open exceptions count: those whose expires_at is after now and that are team-wide or
#      name this submission's run_id. available = remaining_g + open exceptions.
#   3. hard: allowed when estimate_g <= available, else refused (the reason gives the figures).
#   4. soft: allowed when estimate_g <= available; allowed with review_required when it goes
#      into the overdraft (estimate_g <= available + overdraft_allowed_g); refused beyond.
#   5. Labels never widen a budget: the submitter sets them. A refused submission labelled
#      greenkfp.io/priority: production-critical gets one more reason pointing at the review
#      board's exceptions.
package greenkfp.budget

import rego.v1

# The ledger's limits (greenkfp.components.governance.errors: MAX_GRAMS, MAX_NAME_CHARS,
# MAX_RUN_ID_CHARS, MAX_PIPELINE_CHARS; a test keeps them equal). Characters are Unicode code points.
max_grams := 1e15

max_name_chars := 128

max_run_id_chars := 256

max_pipeline_chars := 256

max_overdraft_percent := 100

priority_label := "greenkfp.io/priority"

default decision := {
	"allow": false,
	"reasons": ["the policy reached no decision (a fault in the policy file)"],
	"review_required": false,
	"overdraft_allowed_g": 0,
}

decision := _malformed if {
	count(_problems) > 0
} else := _hard if {
	_in.tier == "hard"
} else := _soft if {
	_in.tier == "soft"
}

_malformed := {
	"allow": false,
	"reasons": sort(_problems),
	"review_required": false,
	"overdraft_allowed_g": 0,
}

# --------------------------------------------------------------------------- input checks

_in := input if is_object(input)

_object_input if is_object(input)

_problems := {"input must be a JSON object (the fields are listed at the top of budget.rego)"} if {
	not _object_input
} else := _field_problems

# Every check reads a field with object.get (null when missing): OPA evaluates
# `not f(input.x)` as undefined, not true, when input.x is missing, so a check written that way
# would let a submission without the field through. Do not write checks that way.
_checks := {
	"team": "name", "pipeline": "pipeline", "tier": "tier", "period": "month",
	"estimate_g": "grams", "limit_g": "grams", "reserved_g": "grams", "settled_g": "grams",
	"remaining_g": "signed_grams", "overdraft_percent": "percent", "labels": "object",
	"exceptions": "array", "now": "timestamp", "run_id": "optional_run_id",
}

_exception_checks := {"id": "name", "amount_g": "grams", "expires_at": "timestamp", "run_id": "optional_run_id"}

_expected := {
	"name": sprintf("a non-empty string of at most %d characters", [max_name_chars]),
	"pipeline": sprintf("a non-empty string of at most %d characters", [max_pipeline_chars]),
	"optional_run_id": sprintf("null or a non-empty string of at most %d characters", [max_run_id_chars]),
	"tier": `"hard" or "soft"`,
	"month": `a month "YYYY-MM"`,
	"grams": "a number from 0 to 1e15",
	"signed_grams": "a number from -1e15 to 1e15",
	"percent": "a number from 0 to 1000",
	"object": "an object of strings",
	"array": "an array of exceptions",
	"timestamp": "an RFC 3339 timestamp",
}

_field_problems contains _bad(field, _expected[kind]) if {
	some field, kind in _checks
	not _valid(kind, object.get(_in, field, null))
}

_field_problems contains sprintf("input.labels[%s] must be a string, got %s", [_show(key), _show(value)]) if {
	is_object(_in.labels)
	some key, value in _in.labels
	not is_string(value)
}

_field_problems contains sprintf("input.exceptions[%d] must be an object, got %s", [i, _show(item)]) if {
	is_array(_in.exceptions)
	some i, item in _in.exceptions
	not is_object(item)
}

_field_problems contains _bad_exception(i, item, field, _expected[kind]) if {
	some i, item in _exception_objects
	some field, kind in _exception_checks
	not _valid(kind, object.get(item, field, null))
}

_exception_objects := {i: item |
	is_array(_in.exceptions)
	some i, item in _in.exceptions
	is_object(item)
}

_valid("name", value) if _text(value, max_name_chars)

_valid("pipeline", value) if _text(value, max_pipeline_chars)

_valid("optional_run_id", value) if value == null

_valid("optional_run_id", value) if _text(value, max_run_id_chars)

_valid("tier", value) if value in {"hard", "soft"}

_valid("month", value) if {
	is_string(value)
	regex.match(`^[0-9]{4}-(0[1-9]|1[0-2])$`, value)
}

_valid("grams", value) if {
	is_number(value)
	value >= 0
	value <= max_grams
}

_valid("signed_grams", value) if {
	is_number(value)
	value >= 0 - max_grams
	value <= max_grams
}

_valid("percent", value) if {
	is_number(value)
	value >= 0
	value <= max_overdraft_percent
}

_valid("object", value) if is_object(value)

_valid("array", value) if is_array(value)

_valid("timestamp", value) if _timestamp(value)

_bad(field, expected) := sprintf("input.%s must be %s, got %s", [field, expected, _shown(_in, field)])

_bad_exception(i, item, field, expected) := sprintf(
	"input.exceptions[%d].%s must be %s, got %s",
	[i, field, expected, _shown(item, field)],
)

# The value of obj[field] for a message, or a word that it is missing.
_shown(obj, field) := _show(obj[field]) if {
	field in object.keys(obj)
} else := "nothing (the field is missing)"

# JSON text of a value, cut to 60 characters; a string's length is its own (not its JSON's, quotes
# and escapes included), the number the checks count.
_show(value) := text if {
	text := json.marshal(value)
	count(text) <= 60
} else := sprintf("%s... (%d characters)", [substring(json.marshal(value), 0, 60), _length(value)])

_length(value) := count(value) if {
	is_string(value)
} else := count(json.marshal(value))

_text(value, limit) if {
	is_string(value)
	trim_space(value) != ""
	count(value) <= limit
}

# RFC 3339 with a real calendar date, checked before time.parse_rfc3339_ns sees it (a builtin
# error would stop the evaluation instead of refusing with a reason).
_timestamp(value) if {
	is_string(value)
	regex.match(
		`^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`,
		value,
	)
	substring(value, 8, 2) <= _days_in_month(substring(value, 5, 2), to_number(substring(value, 0, 4)))
}

_days_in_month(month, year) := "29" if {
	month == "02"
	_leap(year)
} else := "28" if {
	month == "02"
} else := days if {
	days := {"01": "31", "03": "31", "04": "30", "05": "31", "06": "30", "07": "31", "08": "31", "09": "30", "10": "31", "11": "30", "12": "31"}[month]
}

_leap(year) if {
	year % 4 == 0
	year % 100 != 0
}

_leap(year) if year % 400 == 0

# --------------------------------------------------------------------------- figures (valid input only)

_now_ns := time.parse_rfc3339_ns(_in.now)

# An exception applies to the whole team (no run_id) or to this submission's run.
_applies(item) if object.get(item, "run_id", null) == null

_applies(item) if {
	_text(item.run_id, max_run_id_chars)
	item.run_id == _in.run_id
}

_open_exceptions := [item |
	some item in _in.exceptions
	time.parse_rfc3339_ns(item.expires_at) > _now_ns
	_applies(item)
]

_exceptions_g := sum([item.amount_g | some item in _open_exceptions])

_available_g := _in.remaining_g + _exceptions_g

_overdraft_g := (_in.limit_g * _in.overdraft_percent) / 100

# Grams for a reason: rounded to 0.1 g.
_g(value) := sprintf("%v", [round(value * 10) / 10])

_budget := sprintf("%s budget of team %s for %s", [_in.tier, _show(_in.team), _in.period])

_available := sprintf(
	"remaining %s g + open exceptions %s g = %s g",
	[_g(_in.remaining_g), _g(_exceptions_g), _g(_available_g)],
)

_spent := sprintf(
	"limit %s g, reserved %s g, settled %s g",
	[_g(_in.limit_g), _g(_in.reserved_g), _g(_in.settled_g)],
)

_hint := [sprintf(
	"the label %s: production-critical does not lift a budget; ask the review board for an exception",
	[priority_label],
)] if {
	is_object(_in.labels)
	_in.labels[priority_label] == "production-critical"
} else := []

_hard := {
	"allow": true,
	"reasons": [sprintf("%s: estimate %s g is within %s", [_budget, _g(_in.estimate_g), _available])],
	"review_required": false,
	"overdraft_allowed_g": 0,
} if {
	_in.estimate_g <= _available_g
} else := {
	"allow": false,
	"reasons": array.concat(
		[sprintf(
			"%s: estimate %s g exceeds %s (%s)",
			[_budget, _g(_in.estimate_g), _available, _spent],
		)],
		_hint,
	),
	"review_required": false,
	"overdraft_allowed_g": 0,
}

_soft := {
	"allow": true,
	"reasons": [sprintf("%s: estimate %s g is within %s", [_budget, _g(_in.estimate_g), _available])],
	"review_required": false,
	"overdraft_allowed_g": _overdraft_g,
} if {
	_in.estimate_g <= _available_g
} else := {
	"allow": true,
	"reasons": [sprintf(
		"%s: estimate %s g goes %s g into the overdraft of %s g (%v %% of limit %s g) beyond %s; review required",
		[
			_budget, _g(_in.estimate_g), _g(_in.estimate_g - _available_g), _g(_overdraft_g),
			_in.overdraft_percent, _g(_in.limit_g), _available,
		],
	)],
	"review_required": true,
	"overdraft_allowed_g": _overdraft_g,
} if {
	_in.estimate_g <= _available_g + _overdraft_g
} else := {
	"allow": false,
	"reasons": array.concat(
		[sprintf(
			"%s: estimate %s g exceeds %s + overdraft %s g (%v %% of limit %s g) = %s g (%s)",
			[
				_budget, _g(_in.estimate_g), _available, _g(_overdraft_g), _in.overdraft_percent,
				_g(_in.limit_g), _g(_available_g + _overdraft_g), _spent,
			],
		)],
		_hint,
	),
	"review_required": false,
	"overdraft_allowed_g": _overdraft_g,
}
