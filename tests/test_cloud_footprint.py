"""Reading the clouds' carbon exports: GCP Carbon Footprint (BigQuery's newline-delimited JSON,
records nested; query results saved as CSV, records flattened into dotted columns) and the AWS
Customer Carbon Footprint Tool's carbon emissions export (CSV, metric tons). Bad input is one
line naming the file, the line and the field."""

from __future__ import annotations

import json

import pytest

from greenkfp.components.governance.cloud_footprint import (
    NO_PROJECT,
    CloudExportError,
    read_aws_export,
    read_gcp_export,
)

GCP_COLUMNS = ["usage_month", "billing_account_id", "project.id", "project.number", "service.description",
               "service.id", "location.location", "location.region", "carbon_model_version",
               "carbon_footprint_total_kgCO2e.location_based", "carbon_footprint_total_kgCO2e.market_based",
               "carbon_footprint_kgCO2e.scope1", "carbon_footprint_kgCO2e.scope2.location_based",
               "carbon_footprint_kgCO2e.scope2.market_based", "carbon_footprint_kgCO2e.scope3"]


def gcp_record(**changes) -> dict:
    """One row as BigQuery's JSON export writes it (records nested, INT64 as a string)."""
    record = {"usage_month": "2026-10-01", "billing_account_id": "007GD7-15C0E6-BDE6B3",
              "project": {"id": "acme-prod", "number": "802583874831"},
              "service": {"id": "6E18-756A-64DB", "description": "Compute Engine"},
              "location": {"location": "europe-west1-b", "region": "europe-west1"}, "carbon_model_version": "12",
              "carbon_footprint_total_kgCO2e": {"location_based": 1587.3, "market_based": 588.8},
              "carbon_footprint_kgCO2e": {"scope1": 10, "scope2": {"location_based": 400.0, "market_based": 105.8},
                                          "scope3": 986.8}}
    record.update(changes)
    return record


def gcp_csv_line(record: dict) -> str:
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        else:
            flat[prefix[:-1]] = value

    walk("", record)
    return ",".join("" if flat.get(c) is None else str(flat[c]) for c in GCP_COLUMNS)


AWS_HEADER = ("last_refresh_timestamp,location,model_version,payer_account_id,product_code,region_code,"
              "total_lbm_emissions_unit,total_lbm_emissions_value,total_mbm_emissions_unit,total_mbm_emissions_value,"
              "usage_account_id,usage_period_end,usage_period_start")


def aws_line(value="0.0123", unit="MTCO2e", start="2026-10-01 00:00:00Z", account="123456789012") -> str:
    return (f"2026-11-20 06:00:00Z,Europe (Ireland),v3.0.0,210987654321,AmazonEC2,eu-west-1,{unit},{value},MTCO2e,"
            f"0.002,{account},2026-11-01 00:00:00Z,{start}")


def test_gcp_json_rows_are_read_with_every_scope(tmp_path):
    path = tmp_path / "gcp.jsonl"
    other = gcp_record(usage_month="2026-11-01", project=None, service={"description": "Cloud Storage"})
    path.write_text("\n".join(json.dumps(r) for r in (gcp_record(), other)) + "\n\n")
    first, second = read_gcp_export(path)
    assert (first.provider, first.project, first.month, first.service, first.region) == \
        ("gcp", "acme-prod", "2026-10", "Compute Engine", "europe-west1")
    assert (first.location_based_kg, first.scope1_kg, first.scope2_market_kg, first.scope3_kg) == \
        (400.0, 10.0, 105.8, 986.8)
    assert (first.total_location_kg, first.total_market_kg, first.model_version, first.line) == \
        (1587.3, 588.8, "12", 1)
    assert (second.project, second.month, second.line) == (NO_PROJECT, "2026-11", 2)  # project.id NULL


def test_gcp_csv_rows_with_dotted_columns_read_the_same(tmp_path):
    path = tmp_path / "gcp.csv"
    path.write_text(",".join(GCP_COLUMNS) + "\n" + gcp_csv_line(gcp_record()) + "\n")
    (row,) = read_gcp_export(path)
    json_path = tmp_path / "gcp.json"
    json_path.write_text(json.dumps(gcp_record()) + "\n")
    (same,) = read_gcp_export(json_path)
    assert (row.project, row.month, row.location_based_kg, row.scope3_kg, row.line) == \
        (same.project, same.month, same.location_based_kg, same.scope3_kg, 2)


def test_aws_rows_are_read_in_kg(tmp_path):
    path = tmp_path / "aws.csv"
    path.write_text(AWS_HEADER + "\n" + aws_line() + "\n" + aws_line(start="2026-11-01") + "\n")
    first, second = read_aws_export(path)
    assert (first.provider, first.project, first.month, first.service, first.region) == \
        ("aws", "123456789012", "2026-10", "AmazonEC2", "eu-west-1")
    assert first.location_based_kg == pytest.approx(12.3) and first.total_market_kg == pytest.approx(2.0)
    assert (second.month, second.line) == ("2026-11", 3)


# every required column of both CSV exports, left empty: one line naming the file, line 2, the column and ''
@pytest.mark.parametrize("column", ["total_lbm_emissions_value", "total_lbm_emissions_unit", "usage_period_start",
                                    "usage_account_id"])
def test_an_empty_required_aws_cell_is_refused_not_counted_as_zero(tmp_path, column):
    header = AWS_HEADER.split(",")
    cells = aws_line().split(",")
    cells[header.index(column)] = ""
    path = tmp_path / "aws.csv"
    path.write_text(AWS_HEADER + "\n" + ",".join(cells) + "\n")
    with pytest.raises(CloudExportError) as caught:
        read_aws_export(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line 2: field {column} ") and message.endswith(", got ''"), message
    assert "\n" not in message


@pytest.mark.parametrize("column", ["usage_month", "carbon_footprint_kgCO2e.scope2.location_based"])
def test_an_empty_required_gcp_csv_cell_is_refused(tmp_path, column):
    cells = gcp_csv_line(gcp_record()).split(",")
    cells[GCP_COLUMNS.index(column)] = ""
    path = tmp_path / "gcp.csv"
    path.write_text(",".join(GCP_COLUMNS) + "\n" + ",".join(cells) + "\n")
    with pytest.raises(CloudExportError) as caught:
        read_gcp_export(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line 2: field {column} is empty") and message.endswith(", got ''"), message


def test_an_optional_empty_aws_market_based_value_is_no_figure(tmp_path):
    header = AWS_HEADER.split(",")
    cells = aws_line().split(",")
    cells[header.index("total_mbm_emissions_value")] = ""
    path = tmp_path / "aws.csv"
    path.write_text(AWS_HEADER + "\n" + ",".join(cells) + "\n")
    (row,) = read_aws_export(path)
    assert row.total_market_kg is None and row.location_based_kg == pytest.approx(12.3)


def test_an_unclosed_quote_is_reported_on_the_line_it_opens(tmp_path):
    path = tmp_path / "aws.csv"
    lines = [aws_line(start=f"2026-{m:02d}-01") for m in range(1, 10)]
    lines[0] = lines[0].replace(",MTCO2e,", ',"MTCO2e,', 1)  # line 2: a quote never closed
    path.write_text(AWS_HEADER + "\n" + "\n".join(lines) + "\n")
    with pytest.raises(CloudExportError) as caught:
        read_aws_export(path)
    assert str(caught.value).startswith(f"{path}: line 2: unclosed quote"), str(caught.value)
    # closed by a later quote: still the line it opens on
    lines[4] = lines[4].replace(",MTCO2e,", ',MTCO2e",', 1)
    path.write_text(AWS_HEADER + "\n" + "\n".join(lines) + "\n")
    with pytest.raises(CloudExportError) as caught:
        read_aws_export(path)
    assert str(caught.value).startswith(f"{path}: line 2: unclosed quote"), str(caught.value)


def test_a_quoted_line_break_is_refused_on_the_line_it_opens(tmp_path):
    path = tmp_path / "aws.csv"  # no cell of the export holds a line break
    first = aws_line().replace("Europe (Ireland)", '"Europe\n(Ireland)"')
    path.write_text(AWS_HEADER + "\n" + aws_line() + "\n" + first + "\n" + aws_line() + "\n")
    with pytest.raises(CloudExportError) as caught:
        read_aws_export(path)
    assert str(caught.value) == f"{path}: line 3: unclosed quote (a quoted cell runs on to line 4; no cell of the " \
                                "export holds a line break)"


def _gcp_json(tmp_path, *records, name="gcp.jsonl", raw=None):
    path = tmp_path / name
    path.write_text(raw if raw is not None else "\n".join(json.dumps(r) for r in records) + "\n")
    return path


@pytest.mark.parametrize("record, line, message", [
    (gcp_record(usage_month="Oct 2026"), 2, "field usage_month has an unknown month format (expected a DATE such as "
                                            "2026-10-01, or 2026-10), got 'Oct 2026'"),
    (gcp_record(usage_month="2026-13-01"), 2, "field usage_month has an unknown month format"),
    (gcp_record(carbon_footprint_kgCO2e={"scope2": {"location_based": "lots"}}), 2,
     "field carbon_footprint_kgCO2e.scope2.location_based must be a number of kg CO2e >= 0, got 'lots'"),
    (gcp_record(carbon_footprint_kgCO2e={"scope2": {"location_based": -4}}), 2,
     "field carbon_footprint_kgCO2e.scope2.location_based must be a number of kg CO2e >= 0, got -4"),
    (gcp_record(carbon_footprint_kgCO2e={"scope1": 1}), 2,
     "field carbon_footprint_kgCO2e.scope2.location_based is missing"),
    (gcp_record(carbon_footprint_kgCO2e={"scope2": {"location_based": None}}), 2,
     "field carbon_footprint_kgCO2e.scope2.location_based is empty"),
    (gcp_record(carbon_footprint_kgCO2e={"scope1": "x", "scope2": {"location_based": 1}}), 2,
     "field carbon_footprint_kgCO2e.scope1 must be a number of kg CO2e >= 0, got 'x'"),
])
def test_a_malformed_gcp_json_row_is_one_line_naming_file_line_and_field(tmp_path, record, line, message):
    path = _gcp_json(tmp_path, gcp_record(), record)
    with pytest.raises(CloudExportError) as caught:
        read_gcp_export(path)
    assert str(caught.value).startswith(f"{path}: line {line}: {message}"), str(caught.value)
    assert "\n" not in str(caught.value)


def test_malformed_gcp_json_and_csv_files(tmp_path):
    cases = [
        (_gcp_json(tmp_path, raw=json.dumps(gcp_record()) + "\n{not json\n"), "line 2: is not a JSON object"),
        (_gcp_json(tmp_path, raw="[1, 2]\n", name="list.json"), "line 1: is not a JSON object, got 'list'"),
    ]
    header = tmp_path / "header.csv"
    header.write_text("usage_month,project.id\n2026-10-01,acme\n")
    cases.append((header, "line 1: the header lacks the GCP Carbon Footprint export column(s) "
                          "carbon_footprint_kgCO2e.scope2.location_based"))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(",".join(GCP_COLUMNS) + "\n" + gcp_csv_line(gcp_record()) + "\n2026-10-01,acme\n")
    cases.append((ragged, "line 3: has 2 cells for the header's 15 columns"))
    month = tmp_path / "month.csv"
    month.write_text(",".join(GCP_COLUMNS) + "\n" + gcp_csv_line(gcp_record(usage_month="10/2026")) + "\n")
    cases.append((month, "line 2: field usage_month has an unknown month format"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cases.append((empty, "is empty (expected a GCP Carbon Footprint export CSV with a header)"))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    cases.append((binary, "is not UTF-8 text"))
    cases.append((tmp_path / "missing.csv", "no such file"))
    for path, message in cases:
        with pytest.raises(CloudExportError) as caught:
            read_gcp_export(path)
        assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)


@pytest.mark.parametrize("line, message", [
    (aws_line(unit="kgCO2e"), "line 2: field total_lbm_emissions_unit must be MTCO2e (metric tons of CO2 equivalent), "
                              "the unit the export uses, got 'kgCO2e'"),
    (aws_line(value="n/a"), "line 2: field total_lbm_emissions_value must be a number of metric tons CO2e >= 0, got 'n/a'"),
    (aws_line(start="Q4-2026"), "line 2: field usage_period_start has an unknown month format"),
    (aws_line(account=""), "line 2: field usage_account_id is empty"),
])
def test_a_malformed_aws_row_is_one_line_naming_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "aws.csv"
    path.write_text(AWS_HEADER + "\n" + line + "\n")
    with pytest.raises(CloudExportError) as caught:
        read_aws_export(path)
    assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)


def test_an_aws_file_without_the_documented_columns_is_refused(tmp_path):
    path = tmp_path / "aws.csv"
    path.write_text("account,month,co2\n1,2026-10,3\n")
    with pytest.raises(CloudExportError, match=r"line 1: the header lacks the AWS carbon emissions export column\(s\) "
                                                r"usage_account_id, usage_period_start, total_lbm_emissions_value"):
        read_aws_export(path)


# --------------------------------------------------------------------------- the hostile review's cases


def _gcp_csv(tmp_path, value, name="gcp.csv"):
    path = tmp_path / name
    record = gcp_record(carbon_footprint_kgCO2e={"scope2": {"location_based": "VALUE"}})
    path.write_text(",".join(GCP_COLUMNS) + "\n" + gcp_csv_line(record).replace("VALUE", value) + "\n")
    return path


@pytest.mark.parametrize("value, problem", [
    ("1e300", "is beyond 1e+12 kg CO2e for one row"), ("1e308", "is beyond 1e+12 kg CO2e for one row"),
    ("1_000", "must be a number of kg CO2e >= 0"), ("1_0.5", "must be a number of kg CO2e >= 0"),
    ("0x10", "must be a number of kg CO2e >= 0"), ("nan", "must be a number of kg CO2e >= 0"),
    ("Infinity", "must be a number of kg CO2e >= 0"),
])
def test_absurd_or_non_decimal_figures_are_refused_naming_file_row_column_and_value(tmp_path, value, problem):
    path = _gcp_csv(tmp_path, value)
    with pytest.raises(CloudExportError) as caught:
        read_gcp_export(path)
    assert str(caught.value) == (f"{path}: line 2: field carbon_footprint_kgCO2e.scope2.location_based {problem}"
                                 + ("" if "beyond" not in problem else " (not a real figure: is the export broken?)")
                                 + f", got {value!r}")


def test_json_figures_that_overflow_and_aws_tons_beyond_the_bound_are_refused(tmp_path):
    huge = _gcp_json(tmp_path, raw='{"usage_month": "2026-10-01", "project": {"id": "p"}, "carbon_footprint_kgCO2e": '
                                   '{"scope2": {"location_based": 1' + "0" * 400 + '}}}\n')
    with pytest.raises(CloudExportError, match=r"line 1: field carbon_footprint_kgCO2e.scope2.location_based must be "
                                               r"a number of kg CO2e >= 0, got 1000"):
        read_gcp_export(huge)
    aws = tmp_path / "aws.csv"
    aws.write_text(AWS_HEADER + "\n" + aws_line(value="2e9") + "\n")  # 2e12 kg
    with pytest.raises(CloudExportError, match=r"line 2: field total_lbm_emissions_value is beyond 1e\+09 metric tons "
                                               r"CO2e for one row .*got '2e9'"):  # the bound in the field's unit
        read_aws_export(aws)
    aws.write_text(AWS_HEADER + "\n" + aws_line(value="1000000000.0000001") + "\n")
    with pytest.raises(CloudExportError, match="is beyond 1e\\+09 metric tons"):
        read_aws_export(aws)
    aws.write_text(AWS_HEADER + "\n" + aws_line(value="1e9") + "\n")
    (row,) = read_aws_export(aws)
    assert row.location_based_kg <= 1e12  # no accepted row exceeds the kg bound after conversion


def test_repeated_csv_columns_are_refused_naming_the_column(tmp_path):
    gcp = tmp_path / "gcp.csv"
    gcp.write_text(",".join(GCP_COLUMNS + ["project.id"]) + "\n" + gcp_csv_line(gcp_record()) + ",other\n")
    with pytest.raises(CloudExportError) as caught:
        read_gcp_export(gcp)
    assert str(caught.value).startswith(f"{gcp}: line 1: the header repeats the column(s) project.id")
    aws = tmp_path / "aws.csv"
    aws.write_text(AWS_HEADER + ",usage_account_id\n" + aws_line() + ",999\n")
    with pytest.raises(CloudExportError, match="the header repeats the column\\(s\\) usage_account_id"):
        read_aws_export(aws)


def test_an_export_without_data_rows_is_the_same_error_for_json_and_csv(tmp_path):
    cases = [(_gcp_json(tmp_path, raw="", name="empty.jsonl"), read_gcp_export, "GCP Carbon Footprint export"),
             (_gcp_json(tmp_path, raw="\n\n", name="blank.json"), read_gcp_export, "GCP Carbon Footprint export"),
             (_gcp_json(tmp_path, raw=",".join(GCP_COLUMNS) + "\n", name="header.csv"), read_gcp_export,
              "GCP Carbon Footprint export"),
             (_gcp_json(tmp_path, raw=AWS_HEADER + "\n", name="aws.csv"), read_aws_export,
              "AWS carbon emissions export")]
    for path, reader, what in cases:
        with pytest.raises(CloudExportError) as caught:
            reader(path)
        assert str(caught.value) == f"{path}: has no data rows (an empty {what}: nothing to reconcile)"


def test_fifos_and_devices_are_refused_before_they_are_read(tmp_path):
    import os
    import threading

    fifo = tmp_path / "gcp.csv"
    os.mkfifo(fifo)

    def unblock():  # were the FIFO opened for reading, this writer lets the test end instead of hanging
        if not done.wait(3):
            with open(fifo, "w"):
                pass

    done = threading.Event()
    threading.Thread(target=unblock, daemon=True).start()
    try:
        with pytest.raises(CloudExportError) as caught:
            read_gcp_export(fifo)
    finally:
        done.set()
    assert str(caught.value) == f"{fifo}: is not a regular file (a device, pipe or socket)"
    for path in ("/dev/zero", tmp_path):
        with pytest.raises(CloudExportError, match="is not a regular file|is a folder, not a file"):
            read_aws_export(path)


def test_the_same_export_twice_is_refused(tmp_path):
    from greenkfp.components.governance.cloud_footprint import read_exports

    first = _gcp_json(tmp_path, gcp_record(), name="a.jsonl")
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(first.read_bytes())
    other = _gcp_json(tmp_path, gcp_record(usage_month="2026-11-01"), name="b.jsonl")
    rows, sources = read_exports([("gcp", first), ("gcp", other)])
    assert len(rows) == 2 and [s[2] for s in sources] == [1, 1]
    for again, how in ((tmp_path / "." / "a.jsonl", "the same file as"), (copy, "the same content as")):
        with pytest.raises(CloudExportError) as caught:
            read_exports([("gcp", first), ("gcp", other), ("gcp", again)])
        assert str(caught.value) == (f"--gcp-export {again}: is {how} --gcp-export {first}: an export given twice "
                                     "would be counted twice")
