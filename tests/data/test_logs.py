"""`din_tf.data.logs`: LogSpec validation and round trip, and read_log on
small CSV / TSV / Parquet logs with side tables, checked value by value."""

import json
import os
import sys

import numpy as np
import pytest

from din_tf.data._io import DataFormatError
from din_tf.data.log_spec import LogSpec, LogSpecError, SideTable
from din_tf.data.logs import MissingDependencyError, read_log
from din_tf.schema.features import FeatureSchema

try:
    import pyarrow  # noqa: F401
    ENGINES = ["python", "pyarrow"]
except ImportError:
    ENGINES = ["python"]


def write(path, text, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write(text)
    return str(path)


def schema(*features, sequences=None):
    base = [{"name": "user_id", "group": "user"}, {"name": "item_id", "group": "candidate"}]
    return FeatureSchema.from_config({
        "features": base + list(features),
        "sequences": sequences if sequences is not None else
        [{"name": "history", "features": ["item_id"]}]})


LOG = "user_id,item_id,timestamp,hour\nu1,i1,10,3\nu2,i2,5,4\nu1,i2,7,3\n"


def spec(path, **extra):
    return LogSpec(path=path, user="user_id", item="item_id", timestamp="timestamp", **extra)


# -- LogSpec ---------------------------------------------------------------------------


def test_spec_round_trips_through_json_with_side_tables():
    s = LogSpec.from_dict({
        "path": "log.tsv", "header": False, "names": ["u", "i", "t", "y"], "user": "u",
        "item": "i", "timestamp": "t", "label": "y",
        "item_features": {"path": "items.txt", "delimiter": "|", "header": False,
                          "names": ["id", "a", "b"], "id": "id", "flags": {"g": ["a", "b"]},
                          "encoding": "latin-1"},
        "user_features": {"path": "users.csv", "id": "u", "multi_valued": {"tags": ";"},
                          "missing": "default", "buckets": {"age": [18, 25.5]}}})
    assert s.format == "tsv" and s.separator == "\t"
    assert s.item_features.format == "csv" and s.item_features.separator == "|"
    assert s.item_features.flags == {"g": ("a", "b")}
    assert s.user_features.buckets == {"age": (18, 25.5)}
    again = LogSpec.from_json(s.to_json())
    assert again == s
    assert json.loads(again.to_json()) == json.loads(s.to_json())


@pytest.mark.parametrize("config, words", [
    ({"format": "xlsx"}, ["format", "xlsx"]),
    ({"header": False}, ["header is false", "names"]),
    ({"delimiter": "||"}, ["delimiter"]),
    ({"encoding": "klingon"}, ["encoding", "klingon"]),
    ({"colour": 1}, ["unknown field", "colour"]),
    ({"timestamp": "user_id"}, ["twice", "user_id"]),
    ({"user_features": {"path": "u.csv"}}, ["user_features", "missing field", "id"]),
    ({"item_features": {"path": "i.csv", "id": "i", "missing": "skip"}},
     ["item_features", "missing", "skip"]),
    ({"multi_valued": {"tags": ""}}, ["multi_valued"]),
])
def test_spec_errors_name_the_field(config, words):
    base = {"path": "log.csv", "user": "user_id", "item": "item_id", "timestamp": "timestamp"}
    with pytest.raises(LogSpecError) as e:
        LogSpec.from_dict(base | config)
    for word in words:
        assert word in str(e.value)


def test_spec_requires_columns():
    with pytest.raises(LogSpecError, match=r"missing field\(s\) \['timestamp'\]"):
        LogSpec.from_dict({"path": "x.csv", "user": "u", "item": "i"})


def test_relative_paths_resolve_against_data_dir_or_spec_folder(tmp_path):
    path = write(tmp_path / "spec.json", json.dumps({
        "path": "log.csv", "user": "u", "item": "i", "timestamp": "t",
        "item_features": {"path": "sub/items.csv", "id": "i"}}))
    assert LogSpec.load(path).path == str(tmp_path / "log.csv")
    loaded = LogSpec.load(path, data_dir="/data/x")
    assert loaded.path == "/data/x/log.csv"
    assert loaded.item_features.path == "/data/x/sub/items.csv"
    assert spec("/abs/log.csv").resolve("/data").path == "/abs/log.csv"


# -- reading ----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_reads_csv_columns_and_context_features(tmp_path, engine):
    path = write(tmp_path / "log.csv", LOG)
    s = schema({"name": "hour", "group": "context", "dtype": "int64"},
               {"name": "hour_f", "group": "context", "kind": "numeric", "column": "hour"})
    log = read_log(spec(path), s, engine=engine)
    assert len(log) == 3 and log.n_users == 2 and log.n_items == 2
    assert log.user.take().tolist() == [b"u1", b"u2", b"u1"]
    assert log.features["item_id"].take().tolist() == [b"i1", b"i2", b"i2"]
    assert log.timestamp.tolist() == [10, 5, 7]
    assert log.features["hour"].take().tolist() == [3, 4, 3]
    assert log.features["hour"].values.dtype == np.int64
    assert log.features["hour_f"].take().dtype == np.float32
    assert log.label is None


@pytest.mark.parametrize("engine", ENGINES)
def test_reads_tsv_without_header_and_int_ids(tmp_path, engine):
    path = write(tmp_path / "log.tsv", "7\t100\t3\t1\n8\t200\t2\t0\n7\t200\t1\t1\n")
    s = FeatureSchema.from_config({"features": [
        {"name": "user", "group": "user", "dtype": "int64", "column": "u"},
        {"name": "item", "group": "candidate", "dtype": "int64", "column": "i"}]})
    log = read_log(LogSpec(path=path, header=False, names=["u", "i", "t", "y"], user="u",
                           item="i", timestamp="t", label="y"), s, engine=engine)
    assert log.features["user"].take().tolist() == [7, 8, 7]
    assert log.features["item"].take().tolist() == [100, 200, 200]
    assert log.label.tolist() == [1, 0, 1]


def test_reads_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    path = str(tmp_path / "log.parquet")
    pq.write_table(pa.table({"user_id": [1, 2, 1], "item_id": ["a", "b", "c"],
                             "timestamp": [3, 2, 1], "price": [1.5, 2.0, 0.5]}), path)
    s = schema({"name": "price", "group": "candidate", "kind": "numeric"})
    log = read_log(spec(path), s)
    assert log.user.take().tolist() == [b"1", b"2", b"1"]
    assert log.features["price"].take().tolist() == [1.5, 2.0, 0.5]
    assert log.timestamp.tolist() == [3, 2, 1]


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = write(tmp_path / "log.parquet", "not really parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"install din_tf\[parquet\]"):
        read_log(spec(path), schema())


ITEMS = "item_id|genres|g_action|g_comedy|brand\ni1|Action;Comedy|1|1|acme\ni2||0|1|zeta\n"


@pytest.mark.parametrize("engine", ENGINES)
def test_side_tables_join_by_id_with_multi_values_and_flags(tmp_path, engine):
    log_path = write(tmp_path / "log.csv", LOG)
    write(tmp_path / "items.txt", ITEMS)
    write(tmp_path / "users.tsv", "uid\tage\nu2\t30\nu1\t25\n")
    s = schema({"name": "age", "group": "user", "dtype": "int64"},
               {"name": "brand", "group": "candidate"},
               {"name": "genres", "group": "candidate", "max_values": 3},
               {"name": "flag_genres", "group": "candidate", "max_values": 2})
    sp = LogSpec.from_dict({
        "path": log_path, "user": "user_id", "item": "item_id", "timestamp": "timestamp",
        "user_features": {"path": str(tmp_path / "users.tsv"), "id": "uid"},
        "item_features": {"path": str(tmp_path / "items.txt"), "delimiter": "|",
                          "id": "item_id", "multi_valued": {"genres": ";"},
                          "flags": {"flag_genres": ["g_action", "g_comedy"]}}})
    log = read_log(sp, s, engine=engine)
    assert log.column("age").tolist() == [25, 30, 25]
    assert log.features["brand"].take().tolist() == [b"acme", b"zeta", b"zeta"]
    assert log.features["genres"].take().tolist() == [
        [b"Action", b"Comedy", b""], [b"", b"", b""], [b"", b"", b""]]
    assert log.features["flag_genres"].take().tolist() == [
        [b"g_action", b"g_comedy"], [b"g_comedy", b""], [b"g_comedy", b""]]


@pytest.mark.parametrize("engine", ENGINES)
def test_id_missing_from_side_table(tmp_path, engine):
    log_path = write(tmp_path / "log.csv", LOG)
    users = write(tmp_path / "users.csv", "uid,age\nu1,25\n")
    s = schema({"name": "age", "group": "user", "dtype": "int64"})
    table = {"path": users, "id": "uid"}
    with pytest.raises(DataFormatError) as e:
        read_log(spec(log_path, user_features=table), s, engine=engine)
    message = str(e.value)
    assert "user_features" in message and "'uid'" in message and "'u2'" in message
    log = read_log(spec(log_path, user_features=table | {"missing": "default"}), s,
                   engine=engine)
    assert log.features["age"].take().tolist() == [25, -1, 25]


def test_duplicate_side_table_id_is_an_error(tmp_path):
    log_path = write(tmp_path / "log.csv", LOG)
    users = write(tmp_path / "users.csv", "uid,age\nu1,25\nu2,3\nu1,26\n")
    with pytest.raises(DataFormatError, match=r"id 'u1'.*2 rows"):
        read_log(spec(log_path, user_features={"path": users, "id": "uid"}),
                 schema({"name": "age", "group": "user"}))


@pytest.mark.parametrize("engine", ENGINES)
def test_latin1_side_table(tmp_path, engine):
    log_path = write(tmp_path / "log.csv", LOG)
    write(tmp_path / "items.csv", "item_id,title\ni1,Café\ni2,Naïve\n", encoding="latin-1")
    log = read_log(spec(log_path, item_features={"path": str(tmp_path / "items.csv"),
                                                 "id": "item_id", "encoding": "latin-1"}),
                   schema({"name": "title", "group": "candidate"}), engine=engine)
    assert log.features["title"].take().tolist() == ["Café".encode(), "Naïve".encode(),
                                                     "Naïve".encode()]


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_column_the_file_lacks_lists_the_file_columns(tmp_path, engine):
    path = write(tmp_path / "log.csv", LOG)
    with pytest.raises(DataFormatError) as e:
        read_log(spec(path), schema({"name": "shop", "group": "candidate"}), engine=engine)
    message = str(e.value)
    assert path in message and "'shop'" in message and "'hour'" in message
    with pytest.raises(DataFormatError, match=r"no column\(s\) \['when'\].*'hour'"):
        read_log(LogSpec(path=path, user="user_id", item="item_id", timestamp="when"),
                 schema(), engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_non_integer_value_in_int64_feature_names_line_and_value(tmp_path, engine):
    path = write(tmp_path / "log.csv", LOG.replace("u2,i2,5,4", "u2,i2,5,four"))
    with pytest.raises(DataFormatError) as e:
        read_log(spec(path), schema({"name": "hour", "group": "context", "dtype": "int64"}),
                 engine=engine)
    assert str(e.value).startswith(f"{path}, line 3: column 'hour'")
    assert "integer" in str(e.value) and "'four'" in str(e.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_non_numeric_numeric_feature_and_timestamp(tmp_path, engine):
    path = write(tmp_path / "log.csv", LOG.replace("u1,i2,7,3", "u1,i2,7,x"))
    with pytest.raises(DataFormatError, match=r"line 4: column 'hour'.*number.*'x'"):
        read_log(spec(path), schema({"name": "hour", "group": "context", "kind": "numeric"}),
                 engine=engine)
    path = write(tmp_path / "log2.csv", LOG.replace("u1,i1,10", "u1,i1,noon"))
    with pytest.raises(DataFormatError, match=r"line 2: column 'timestamp'.*'noon'"):
        read_log(spec(path), schema(), engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_log(tmp_path, engine):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp\n")
    with pytest.raises(DataFormatError, match="empty"):
        read_log(spec(path), schema(), engine=engine)
    path = write(tmp_path / "nothing.csv", "")
    with pytest.raises(DataFormatError, match="empty"):
        read_log(spec(path), schema(), engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_labels_must_be_0_or_1(tmp_path, engine):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp,y\nu,a,1,1\nu,b,2,2\n")
    with pytest.raises(DataFormatError, match=r"line 3: column 'y' \(label\).*0 or 1.*'2'"):
        read_log(spec(path, label="y"), schema(), engine=engine)


def test_schema_without_item_feature_and_multi_value_without_max_values(tmp_path):
    path = write(tmp_path / "log.csv", LOG)
    s = FeatureSchema.from_config({"features": [
        {"name": "user_id", "group": "user"},
        {"name": "hour", "group": "candidate"}]})
    with pytest.raises(LogSpecError, match="no candidate feature for the item column"):
        read_log(spec(path), s)
    with pytest.raises(LogSpecError, match="'hour'.*max_values"):
        read_log(spec(path, multi_valued={"hour": ";"}),
                 schema({"name": "hour", "group": "context"}))


def test_wrong_field_count_names_the_line(tmp_path):
    path = write(tmp_path / "log.csv", LOG + "u3,i1\n")
    with pytest.raises(DataFormatError, match=r"line 5: expected 4 fields"):
        read_log(spec(path), schema(), engine="python")
    if "pyarrow" in ENGINES:
        with pytest.raises(DataFormatError, match="Expected 4 columns"):
            read_log(spec(path), schema(), engine="pyarrow")


def test_side_table_is_a_dataclass():
    table = SideTable(path="x.csv", id="id", role="item_features")
    assert table.to_dict() == {"path": "x.csv", "format": "csv", "id": "id"}
    assert os.path.basename(table.resolve("/d").path) == "x.csv"


@pytest.mark.parametrize("engine", ENGINES)
def test_quoting_default_per_format(tmp_path, engine):
    log_path = write(tmp_path / "log.csv", LOG)
    write(tmp_path / "items.csv", 'item_id,title\ni1,"Heat, the film"\ni2,Up\n')
    write(tmp_path / "items.tsv", 'item_id\ttitle\ni1\t"Heat\ni2\tUp"\n')
    s = schema({"name": "title", "group": "candidate"})
    quoted = read_log(spec(log_path, item_features={"path": str(tmp_path / "items.csv"),
                                                    "id": "item_id"}), s, engine=engine)
    assert quoted.features["title"].take().tolist() == [b"Heat, the film", b"Up", b"Up"]
    raw = read_log(spec(log_path, item_features={"path": str(tmp_path / "items.tsv"),
                                                 "id": "item_id"}), s, engine=engine)
    assert raw.features["title"].take().tolist() == [b'"Heat', b'Up"', b'Up"']


@pytest.mark.parametrize("engine", ENGINES)
def test_buckets_turn_a_number_into_its_bucket_index(tmp_path, engine):
    log_path = write(tmp_path / "log.csv", LOG)
    users = write(tmp_path / "users.csv", "uid,age\nu1,17\nu2,25\n")
    s = schema({"name": "age", "group": "user", "dtype": "int64", "lookup": "integer",
                "size": 4})
    table = {"path": users, "id": "uid", "buckets": {"age": [18, 25, 35]}}
    log = read_log(spec(log_path, user_features=table), s, engine=engine)
    assert log.features["age"].take().tolist() == [0, 2, 0]
    write(tmp_path / "users.csv", "uid,age\nu1,17\nu2,old\n")
    with pytest.raises(DataFormatError, match=r"line 3: column 'age' \(bucketed\).*'old'"):
        read_log(spec(log_path, user_features=table), s, engine=engine)
    with pytest.raises(LogSpecError, match="buckets"):
        spec(log_path, user_features=table | {"buckets": {"age": [30, 18]}})


def test_int64_multi_values_are_stripped_and_empty_fields_have_none(tmp_path):
    path = write(tmp_path / "log.csv", "u,i,t,tags\na,x,1,3 ; 4\na,y,2,\nb,x,3,5\n")
    s = FeatureSchema.from_config({"features": [
        {"name": "item", "group": "candidate", "column": "i"},
        {"name": "tags", "group": "context", "dtype": "int64", "max_values": 2}]})
    log = read_log(LogSpec(path=path, user="u", item="i", timestamp="t",
                           multi_valued={"tags": ";"}), s)
    assert log.features["tags"].take().tolist() == [[3, 4], [-1, -1], [5, -1]]


def test_parquet_timestamps_and_boolean_labels(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import datetime
    import pyarrow.parquet as pq
    path = str(tmp_path / "log.parquet")
    times = [datetime.datetime(2020, 1, 1, 0, 0, s) for s in (3, 1, 2)]
    pq.write_table(pa.table({"user_id": ["a", "a", "b"], "item_id": [1, 2, None],
                             "timestamp": pa.array(times, pa.timestamp("s")),
                             "clicked": [True, False, True]}), path)
    log = read_log(spec(path, label="clicked"), schema())
    assert log.timestamp.dtype == np.int64  # in the stored unit (parquet: ms)
    assert np.argsort(log.timestamp).tolist() == [1, 2, 0]
    assert log.label.tolist() == [1, 0, 1]
    assert log.features["item_id"].take().tolist() == [b"1", b"2", b""]


@pytest.mark.parametrize("engine", ENGINES)
def test_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path, engine):
    path = write(tmp_path / "log.csv", "\ufeff" + LOG)
    log = read_log(spec(path), schema(), engine=engine)
    assert log.user.take().tolist() == [b"u1", b"u2", b"u1"]


@pytest.mark.parametrize("engine", ENGINES)
def test_gzipped_tsv(tmp_path, engine):
    import gzip
    path = str(tmp_path / "log.tsv.gz")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(LOG.replace(",", "\t"))
    log = read_log(spec(path), schema(), engine=engine)
    assert spec(path).format == "tsv"
    assert log.user.take().tolist() == [b"u1", b"u2", b"u1"]
    assert log.timestamp.tolist() == [10, 5, 7]
