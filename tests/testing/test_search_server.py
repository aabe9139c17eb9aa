"""rds_slowlog.testing.search_server: a real two-node cluster, a real restart on the same data, real TLS.

One two-node Elasticsearch cluster with HTTPS (module scope) carries the Elasticsearch tests, in order:
replicas go green on two processes, a document survives stop + start, the certificate is verified (a wrong
CA and plain HTTP both fail), and kill -9 of the data node leaves a yellow cluster that still indexes.
"""
from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rds_slowlog.search import build_client
from rds_slowlog.testing.search_server import SearchServer, SearchServerError, make_tls

pytestmark = pytest.mark.slow

INDEX = "search-server-test"


@pytest.fixture(scope="module")
def tls_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="module")
def es_cluster(tls_root: Path) -> Iterator[SearchServer]:
    tls = make_tls(tls_root / "good")
    with SearchServer("elasticsearch", nodes=2, tls_dir=tls.dir) as srv:
        yield srv


def _count(srv: SearchServer) -> int:
    status, body = srv.request("GET", f"/{INDEX}/_count")
    assert status == 200, body
    return body["count"]


def test_two_nodes_go_green_with_one_replica(es_cluster: SearchServer) -> None:
    srv = es_cluster
    assert srv.pid(0) and srv.pid(1) and srv.pid(0) != srv.pid(1), "two server processes"
    status, body = srv.request("PUT", f"/{INDEX}", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    assert status == 200, body
    health = srv.health(wait_for_status="green", timeout="90s")
    assert (health["status"], health["number_of_nodes"], health["active_shards"]) == ("green", 2, 2), health
    status, shards = srv.request("GET", f"/_cat/shards/{INDEX}?format=json")
    assert status == 200
    assert sorted(s["node"] for s in shards) == ["node-0", "node-1"], shards   # primary and replica apart
    # every node answers on its own URL, as itself, in the same cluster
    for i in range(2):
        status, nodes = srv.request("GET", "/_nodes/_local", node=i)
        assert status == 200 and nodes["cluster_name"] == srv.cluster_name, nodes
        assert [n["name"] for n in nodes["nodes"].values()] == [f"node-{i}"]


def test_stop_start_is_a_real_restart_on_the_same_data(es_cluster: SearchServer) -> None:
    srv = es_cluster
    client = build_client("elasticsearch", srv.url, ca_certs=srv.ca_cert)
    client.index(index=INDEX, id="kept", document={"n": 1}, refresh=True)
    pids = [srv.pid(0), srv.pid(1)]
    srv.stop()
    assert srv.pid(0) is None and srv.pid(1) is None
    assert all(not Path(f"/proc/{p}").exists() for p in pids), "the JVMs are gone"
    with pytest.raises(urllib.error.URLError):
        srv.request("GET", "/", timeout=5)                     # nothing listens any more
    srv.start()
    assert {srv.pid(0), srv.pid(1)}.isdisjoint(pids)
    srv.health(wait_for_status="green", timeout="90s")
    assert client.get(index=INDEX, id="kept")["_source"] == {"n": 1}
    assert _count(srv) == 1


def test_tls_good_ca_handshakes_wrong_ca_and_plain_http_fail(es_cluster: SearchServer, tls_root: Path) -> None:
    srv = es_cluster
    good = ssl.create_default_context(cafile=srv.ca_cert)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(srv.hosts[0], context=good, timeout=30)  # noqa: S310
    assert refused.value.code == 401                       # TLS verified; then the server wants credentials
    verified = build_client("elasticsearch", srv.url, ca_certs=srv.ca_cert)
    assert verified.cluster.health()["cluster_name"] == srv.cluster_name

    other = make_tls(tls_root / "other")
    wrong = ssl.create_default_context(cafile=str(other.ca_cert))
    with pytest.raises(urllib.error.URLError) as bad:
        urllib.request.urlopen(srv.hosts[0], context=wrong, timeout=30)  # noqa: S310
    assert isinstance(bad.value.reason, ssl.SSLCertVerificationError), bad.value
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        build_client("elasticsearch", srv.url, ca_certs=str(other.ca_cert)).cluster.health()
    # no CA at all: the system store does not know our CA either
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        build_client("elasticsearch", srv.url).cluster.health()
    with pytest.raises(Exception):                         # plain HTTP to the TLS port is not answered
        build_client("elasticsearch", srv.url.replace("https://", "http://")).cluster.health()


def test_kill_data_node_cluster_goes_yellow_and_keeps_indexing(es_cluster: SearchServer) -> None:
    srv = es_cluster
    victim = srv.pid(1)
    srv.kill_node(1)
    assert srv.pid(1) is None and victim and not Path(f"/proc/{victim}").exists()
    health = srv.wait_healthy(expect_nodes=1)
    assert health["number_of_nodes"] == 1
    status, body = srv.request("PUT", f"/{INDEX}/_doc/after-kill?refresh=true", {"n": 2})
    assert status in (200, 201), body
    assert _count(srv) == 2
    srv.start()                                           # only node 1 is started again
    assert srv.health(wait_for_status="green", timeout="120s")["number_of_nodes"] == 2
    with pytest.raises(SearchServerError, match="not running"):
        SearchServer("elasticsearch", nodes=1).kill_node(0)


def test_opensearch_two_nodes_green_then_one_killed(tmp_path: Path) -> None:
    with SearchServer("opensearch", nodes=2) as srv:
        assert not srv.security and srv.url.startswith("http://127.0.0.1:")
        status, body = srv.request("PUT", f"/{INDEX}", {"settings": {"number_of_shards": 1,
                                                                     "number_of_replicas": 1}})
        assert status == 200, body
        assert srv.health(wait_for_status="green", timeout="90s")["active_shards"] == 2
        srv.kill_node(1)
        assert srv.wait_healthy(expect_nodes=1)["status"] == "yellow"
        assert srv.request("PUT", f"/{INDEX}/_doc/after-kill?refresh=true", {"n": 1})[0] in (200, 201)
        assert _count(srv) == 1
    assert not srv.root.exists(), "an own root dir is removed on exit"


def test_opensearch_refuses_tls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="security"):
        SearchServer("opensearch", tmp_path, tls_dir=tmp_path)
