"""Benchmark: load + render + validate (+ policy rules, when present) of a bank-sized estate.

What it measures: `reconciler.manifest.loader.load_estate([DIR])` on a generated estate of
10,000 resources in 200 manifest files (plus `recon.yaml`), of which at least 20 are
`*.yaml.j2` templates that render many Queues in a for-loop, so the jinja2 render cost is
part of the figure. When `reconciler.policy` exports `evaluate`, rule evaluation on the
loaded estate is timed too. Targets: load+render+validate+rules under 2 s wall time and peak
memory under 300 MB on the 2-core CI machine.

How: the estate is generated deterministically (no randomness) into a temporary directory.
Each measurement runs in a fresh child process (`bench_load.py --child DIR`) so that the peak
RSS (`ru_maxrss`) belongs to that one load only. The child reports, as JSON, the import time
(Python interpreter startup is excluded and reported separately by the parent), the load
time, the rule time and the peak RSS. The child runs 5 times; the parent prints min and
median wall time and the maximum peak RSS, then one machine-readable line:

    BENCH load resources=10000 files=200 templates=NN wall_s=X.XXX wall_median_s=X.XXX
    import_s=X.XXX peak_rss_mb=NNN target_wall_s=2 target_rss_mb=300 ok=true|false

`ok` is judged on the median wall time (load + rules, imports excluded) and on the largest
peak RSS of the whole child process (interpreter and imports included: the stricter view).

Who runs it: developers and CI through `make bench`; `--resources N --files M` changes the
size to check how cost grows, `--write DIR` only writes the estate (e.g. for profiling with
`python -m cProfile -s cumtime bench/bench_load.py --child DIR`). Exit status: 0 when both
targets are met, 1 when the estate does not load (the diagnostics are printed), 2 when a
target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import json
import math
import resource
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_WALL_S = 2.0
TARGET_RSS_MB = 300.0
RUNS = 5
MAX_TRADERS_PER_COLLECTOR = 150  # the platform limit is 200
TEMPLATE_SHARE = 0.5  # share of the queues declared through jinja2 templates


# --------------------------------------------------------------------------------------------
# The estate: four sites, desks with a recording policy each, queues per desk.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    key: str
    genesys_region: str
    aws_region: str
    client_region: str
    regimes: tuple[str, ...]
    retain: str
    regulator: str


SITES: tuple[Site, ...] = (
    Site("eu", "eu-west-1", "eu-central-1", "EU", ("mifid2",), "7y", "BaFin"),
    Site("uk", "eu-west-2", "eu-west-2", "UK", ("fca", "mifid2"), "5y", "FCA"),
    Site("us", "us-east-1", "us-east-1", "US", ("cftc", "sec17a4"), "6y", "CFTC"),
    Site("ap", "ap-northeast-1", "ap-northeast-1", "APAC", ("sec17a4",), "6y", "SEC"),
)
LINES = ("rates", "fx", "credit", "equities", "commodities", "energy", "metals", "repo")
BOOKS = ("flow", "exotics", "sales", "voice-broking")
INSTRUMENTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "rates": (("EUR6M", "mid", "curve_point"), ("UST10Y", "yield", "benchmark_yield")),
    "fx": (("EUR/USD", "mid", "eur_usd"), ("USD/JPY", "mid", "usd_jpy")),
    "credit": (("ITRAXX.MAIN", "spread", "itraxx_spread"), ("CDX.IG", "spread", "cdx_spread")),
    "equities": (("SX5E", "last", "index_level"), ("RDSa.L", "last", "equity_price")),
    "commodities": (("Brent_Crude", "price_usd", "commodity"), ("Corn", "price_usd", "grain")),
    "energy": (("Natural_Gas_Hub", "price_usd", "commodity"), ("EEX_Power", "price_eur", "power")),
    "metals": (("XAU/USD", "mid", "gold"), ("LME_Copper", "price_usd", "copper")),
    "repo": (("EUR_GC", "rate", "repo_rate"), ("SOFR", "rate", "overnight_rate")),
}
PROVIDERS = ("bloomberg", "refinitiv", "ice", "generic-rest")
WAIVED_RULE = "recon.market-data-timeout"  # the one exception the estate carries, waived
ESTATE_DATE = dt.date(2026, 1, 5)  # fixed "today" (holds, waiver expiry, rule evaluation)


def _chunks(count: int, parts: int) -> list[range]:
    """`range(count)` cut into `parts` contiguous, nearly equal pieces (none empty)."""
    if parts < 1 or parts > count:
        raise ValueError(f"cannot cut {count} items into {parts} non-empty parts")
    bounds = [count * i // parts for i in range(parts + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(parts)]


def _on_site(count: int, site: int) -> list[int]:
    """Indexes of the `count` site-spread resources (index % 4 == site) that sit on `site`."""
    return list(range(site % len(SITES), count, len(SITES)))


@dataclass(frozen=True, slots=True)
class Plan:
    """How many resources of each kind, and how many files each group is spread over."""

    resources: int
    files: int
    retention: int
    buckets: int
    policies: int
    feeds: int
    topologies: int
    holds: int
    waivers: int
    queues: int
    templates: int
    template_queues: int
    file_counts: dict[str, int]

    @staticmethod
    def make(resources: int, files: int) -> Plan:
        def share(fraction: float, minimum: int) -> int:
            return max(minimum, round(resources * fraction))

        retention = share(0.002, len(SITES))
        buckets = share(0.01, len(SITES))
        policies = share(0.04, len(SITES))
        feeds = share(0.03, 1)
        topologies = share(0.01, 1)
        holds = share(0.02, 1)
        waivers = share(0.003, 1)
        queues = resources - (retention + buckets + policies + feeds + topologies + holds + waivers)
        templates = max(1, round(files * 0.125))
        template_queues = round(queues * TEMPLATE_SHARE)
        counts = {
            "retention": 1,
            "archive": min(buckets, max(1, round(files * 0.04))),
            "recording": min(policies, max(1, round(files * 0.08))),
            "market-data": min(feeds, max(1, round(files * 0.06))),
            "collectors": min(topologies, max(1, round(files * 0.05))),
            "holds": min(holds, max(1, round(files * 0.04))),
            "waivers": 1,
            "templates": templates,
        }
        counts["queues"] = files - sum(counts.values())
        plain_queues = queues - template_queues
        if queues < policies or counts["queues"] < 1 or counts["queues"] > plain_queues:
            raise SystemExit(
                f"cannot spread {resources} resources over {files} files: use at least "
                f"{max(100, files)} resources and at least 9 files, with fewer files than "
                "about half the resources"
            )
        if templates > template_queues:
            raise SystemExit(f"{templates} templates need at least that many template queues")
        return Plan(
            resources, files, retention, buckets, policies, feeds, topologies, holds, waivers,
            queues, templates, template_queues, counts,
        )  # fmt: skip


class Estate:
    """Names and relations of the generated estate, shared by every file writer."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.desk_queues = _chunks(plan.queues, plan.policies)
        self.desk_of_queue = [0] * plan.queues
        for desk, queues in enumerate(self.desk_queues):
            for queue in queues:
                self.desk_of_queue[queue] = desk
        # Feeds too slow for the 200 ms rule, each with a waiver while the vendor fixes it.
        self.waived_feeds = [w * plan.feeds // plan.waivers for w in range(plan.waivers)]

    def site(self, index: int) -> Site:
        return SITES[index % len(SITES)]

    def desk(self, desk: int) -> str:
        return f"{self.site(desk).key}-{LINES[desk // len(SITES) % len(LINES)]}-{desk:03d}"

    def regulated(self, desk: int) -> bool:
        return desk % 20 != 19  # one desk in twenty is sales support, not dealing

    def queue(self, queue: int) -> str:
        return f"{self.desk(self.desk_of_queue[queue])}-q{queue}"

    def trader(self, number: int) -> str:
        return f"trader{number}@bank.example"

    def members(self, queue: int) -> tuple[int, int]:
        return queue, (queue + 1) % self.plan.queues

    def retention(self, index: int) -> str:
        return f"retention-{self.site(index).key}-{index}"

    def bucket(self, index: int) -> str:
        return f"archive-{self.site(index).key}-{index}"

    def bucket_name(self, index: int) -> str:
        return f"acme-recordings-{self.site(index).key}-{index:04d}"

    def feed(self, index: int) -> str:
        desk = index % self.plan.policies
        return f"feed-{PROVIDERS[index % len(PROVIDERS)]}-{self.desk(desk)}-{index}"

    def policy(self, desk: int) -> str:
        return f"rp-{self.desk(desk)}"

    def pick(self, count: int, desk: int) -> int:
        """The site-local retention policy or bucket (of `count`, spread over sites) for `desk`."""
        local = _on_site(count, desk)
        return local[desk // len(SITES) % len(local)]


def _retention_doc(estate: Estate, index: int) -> str:
    site = estate.site(index)
    archive_after = ("30d", "90d", "180d")[index // len(SITES) % 3]
    default = "\n  orgDefault: true" if index == 0 else ""
    return f"""apiVersion: recon/v1
kind: RetentionPolicy
metadata:
  name: {estate.retention(index)}
  labels: {{site: {site.key}}}
spec:
  retain: {site.retain}
  archiveAfter: {archive_after}
  deleteAfterRetention: true{default}
"""


def _bucket_doc(estate: Estate, index: int) -> str:
    site = estate.site(index)
    name = estate.bucket_name(index)
    return f"""apiVersion: recon/v1
kind: ArchiveBucket
metadata:
  name: {estate.bucket(index)}
  labels: {{site: {site.key}}}
spec:
  bucketName: {name}
  region: {site.aws_region}
  objectLock:
    mode: COMPLIANCE
    defaultRetention: 7y
  encryption:
    kmsKeyAlias: alias/recordings-{site.key}
  publicAccess: blocked
  accessLogging:
    targetBucket: {name}-logs   # a log bucket recon does not manage
    prefix: access/
  readers:
    - arn:aws:iam::123456789012:role/compliance-reviewer-{site.key}
    - arn:aws:iam::123456789012:role/surveillance-{site.key}
  metadataExport: true
  tags: {{cost-centre: cc-{4000 + index}, data-class: restricted}}
"""


def _policy_doc(estate: Estate, desk: int) -> str:
    site = estate.site(desk)
    plan = estate.plan
    regimes = ", ".join(site.regimes) if estate.regulated(desk) else ""
    internal = "always" if estate.regulated(desk) else "never"
    return f"""apiVersion: recon/v1
kind: RecordingPolicy
metadata:
  name: {estate.policy(desk)}
  labels: {{site: {site.key}, desk: {estate.desk(desk)}}}
spec:
  regimes: [{regimes}]
  record:
    inbound: always
    outbound: always
    internal: {internal}
    ivrNavigation: true
  retention: {estate.retention(estate.pick(plan.retention, desk))}
  archive: {estate.bucket(estate.pick(plan.buckets, desk))}
  encryptionKey: alias/recordings-{site.key}
  metadataKeys: [market_snapshot, consent, trade_id]
"""


QUEUE_BODY = """apiVersion: recon/v1
kind: Queue
metadata:
  name: $name
  labels: {desk: $desk, site: $site, book: $book}
spec:
  regulated: $regulated
  recordingPolicy: $policy
  region: $region
  clientRegion: $client
  members: [$member_a, $member_b]
  description: "$line desk $desk_number, book $book"
"""


def _queue_fields(estate: Estate, desk: int) -> dict[str, str]:
    site = estate.site(desk)
    return {
        "desk": estate.desk(desk),
        "site": site.key,
        "regulated": "true" if estate.regulated(desk) else "false",
        "policy": estate.policy(desk),
        "region": site.genesys_region,
        "client": site.client_region,
        "line": LINES[desk // len(SITES) % len(LINES)],
        "desk_number": str(desk),
    }


def _queue_doc(estate: Estate, queue: int) -> str:
    first, second = estate.members(queue)
    return string.Template(QUEUE_BODY).substitute(
        _queue_fields(estate, estate.desk_of_queue[queue]),
        name=estate.queue(queue),
        book=BOOKS[queue % len(BOOKS)],
        member_a=estate.trader(first),
        member_b=estate.trader(second),
    )


def _queue_template(estate: Estate, queues: range) -> str:
    """A jinja2 file: a table of desk segments and one for-loop body, one Queue per iteration."""
    books = ", ".join(f'"{book}"' for book in BOOKS)
    rows: list[str] = []
    start = queues.start
    while start < queues.stop:
        desk = estate.desk_of_queue[start]
        stop = min(queues.stop, estate.desk_queues[desk].stop)
        fields = ", ".join(f'"{key}": "{value}"' for key, value in _queue_fields(estate, desk).items())
        rows.append(f'    {{{fields}, "first": {start}, "stop": {stop}}},\n')
        start = stop
    body = string.Template(QUEUE_BODY).substitute(
        {key: f"{{{{ d.{key} }}}}" for key in _queue_fields(estate, 0)},
        name="{{ d.desk }}-q{{ i }}",
        book="{{ books[i % 4] }}",
        member_a="trader{{ i }}@bank.example",
        member_b=f"trader{{{{ (i + 1) % {estate.plan.queues} }}}}@bank.example",
    )
    return (
        "{#- Desk queues, one per book seat; rendered with jinja2 before parsing. #}\n"
        f"{{%- set books = [{books}] %}}\n"
        "{%- set desks = [\n"
        f"{''.join(rows)}"
        "] %}\n"
        "{%- for d in desks %}\n"
        "{%- for i in range(d.first, d.stop) %}\n"
        f"---\n{body}"
        "{%- endfor %}\n"
        "{%- endfor %}\n"
    )


def _feed_doc(estate: Estate, index: int) -> str:
    desk = index % estate.plan.policies
    site = estate.site(desk)
    provider = PROVIDERS[index % len(PROVIDERS)]
    line = LINES[desk // len(SITES) % len(LINES)]
    queues = "\n".join(f"      - {estate.queue(q)}" for q in list(estate.desk_queues[desk])[:4])
    instruments = "\n".join(
        f'    - {{symbol: "{symbol}", field: {field}, as: {key}}}' for symbol, field, key in INSTRUMENTS[line]
    )
    timeout = 250 if index in estate.waived_feeds else 100 + 50 * (index % 3)
    if provider == "generic-rest":
        access = f"""  tls:
    clientCert: file:certs/feed-{index}.pem
    clientKey: env:FEED_{index}_KEY
    ca: file:certs/feed-ca.pem
"""
    elif provider == "refinitiv":
        access = f"""  credentials:
    clientId: rdp-{site.key}-{index}
    clientSecret: env:REFINITIV_SECRET_{index}
"""
    else:
        access = f"""  credentials:
    token: env:{provider.upper()}_TOKEN_{index}
"""
    return f"""apiVersion: recon/v1
kind: MarketDataFeed
metadata:
  name: {estate.feed(index)}
  labels: {{site: {site.key}, desk: {estate.desk(desk)}}}
spec:
  provider: {provider}
  url: https://md-{site.key}.internal.example/v1/{provider}/snapshot
{access}  timeoutMs: {timeout}
  breaker:
    failureThreshold: 5
    resetAfter: 30s
  instruments:
{instruments}
  appliesTo:
    queues:
{queues}
"""


def _topology_doc(estate: Estate, index: int, traders: range) -> str:
    site = estate.site(index)
    name = f"tradesense-{site.key}-{index}"
    collectors: list[str] = []
    per = math.ceil(len(traders) / MAX_TRADERS_PER_COLLECTOR)
    for number, group in enumerate(_chunks(len(traders), per)):
        host = f"tradesense-{site.key}-{index}-{number}"
        lines = "\n".join(
            f"        - {{id: T-{traders[i]}, user: {estate.trader(traders[i])}, turret: TUR-{traders[i]}}}"
            for i in group
        )
        collectors.append(f"""    - name: {name}-c{number}
      endpoints:
        primary: wss://{host}a.internal.example:8443/wba
        secondary: wss://{host}b.internal.example:8443/wba
      token: env:TRADESENSE_TOKEN_{index}_{number}
      pollInterval: 10s
      traders:
{lines}
""")
    return f"""apiVersion: recon/v1
kind: CollectorTopology
metadata:
  name: {name}
  labels: {{site: {site.key}}}
spec:
  dataSource:
    type: bt-trading-enterprise
    switch: {site.key}-iptrade-{index:02d}
  collectors:
{"".join(collectors)}  matching:
    startTolerance: 2s
    durationTolerance: 1s
    lateRecordingGrace: 5m
  target: 99.9%
"""


def _hold_doc(estate: Estate, index: int) -> str:
    plan = estate.plan
    desk = (index * 7) % plan.policies
    site = estate.site(desk)
    queues = list(estate.desk_queues[desk])[:2]
    users = ", ".join(estate.trader(q) for q in queues)
    start = ESTATE_DATE - dt.timedelta(days=30 + index % 300)
    release = ""
    if index % 10 == 9:
        release = f"""  release:
    approvedBy: general.counsel@bank.example
    reason: matter closed by the regulator without further action
    ticket: LEGAL-{7000 + index}
"""
    return f"""apiVersion: recon/v1
kind: LegalHold
metadata:
  name: matter-{ESTATE_DATE.year}-{index:04d}
  labels: {{site: {site.key}}}
spec:
  matter: "{site.regulator} enquiry {ESTATE_DATE.year}/{index:04d}"
  scope:
    users: [{users}]
    queues: [{", ".join(estate.queue(q) for q in queues)}]
    from: {start.isoformat()}
    to: {(start + dt.timedelta(days=90)).isoformat()}
    searchTerms: ["guaranteed return", "off the record", "{LINES[index % len(LINES)]} block"]
  autoExtend: true
{release}"""


def _waiver_doc(estate: Estate, index: int) -> str:
    feed = estate.waived_feeds[index]
    site = estate.site(feed % estate.plan.policies)
    expires = ESTATE_DATE + dt.timedelta(days=90 + 3 * index)
    return f"""apiVersion: recon/v1
kind: Waiver
metadata:
  name: waiver-{index:03d}
spec:
  rule: {WAIVED_RULE}
  target: MarketDataFeed/{estate.feed(feed)}
  reason: "the vendor's snapshot endpoint answers in up to 250 ms until its upgrade; ticket MD-{900 + index}"
  owner: head.of.market-data.{site.key}@bank.example
  expires: {expires.isoformat()}
"""


def _write_group(root: Path, folder: str, stem: str, files: int, docs: Sequence[str]) -> None:
    directory = root / folder
    directory.mkdir(parents=True, exist_ok=True)
    for number, part in enumerate(_chunks(len(docs), files), start=1):
        text = "---\n".join(docs[i] for i in part)
        (directory / f"{stem}-{number:03d}.yaml").write_text(text, encoding="utf-8")


def write_estate(root: Path, plan: Plan) -> None:
    """Write `plan`'s estate (manifests and recon.yaml) under `root`."""
    estate = Estate(plan)
    files = plan.file_counts
    (root / "recon.yaml").write_text(
        "# Project file: the bench estate talks to the embedded sandbox.\n"
        "target: sandbox\n"
        "state:\n  backend: local\n  path: .recon/state.json\n",
        encoding="utf-8",
    )
    _write_group(root, "00-retention", "retention", files["retention"],
                 [_retention_doc(estate, i) for i in range(plan.retention)])  # fmt: skip
    _write_group(root, "10-archive", "archive", files["archive"],
                 [_bucket_doc(estate, i) for i in range(plan.buckets)])  # fmt: skip
    _write_group(root, "20-recording", "recording", files["recording"],
                 [_policy_doc(estate, d) for d in range(plan.policies)])  # fmt: skip
    queue_dir = root / "30-queues"
    queue_dir.mkdir()
    for number, part in enumerate(_chunks(plan.template_queues, plan.templates), start=1):
        text = _queue_template(estate, part)
        (queue_dir / f"desks-{number:03d}.yaml.j2").write_text(text, encoding="utf-8")
    plain = range(plan.template_queues, plan.queues)
    _write_group(root, "30-queues", "queues", files["queues"],
                 [_queue_doc(estate, q) for q in plain])  # fmt: skip
    _write_group(root, "40-market-data", "feeds", files["market-data"],
                 [_feed_doc(estate, i) for i in range(plan.feeds)])  # fmt: skip
    topologies = [_topology_doc(estate, i, traders) for i, traders in enumerate(_chunks(plan.queues, plan.topologies))]
    _write_group(root, "50-collectors", "collectors", files["collectors"], topologies)
    _write_group(root, "60-holds", "holds", files["holds"],
                 [_hold_doc(estate, i) for i in range(plan.holds)])  # fmt: skip
    _write_group(root, "70-waivers", "waivers", files["waivers"],
                 [_waiver_doc(estate, i) for i in range(plan.waivers)])  # fmt: skip


# --------------------------------------------------------------------------------------------
# The child: one measured load in a fresh process.
# --------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    """Peak RSS of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rule_runner(policy: Any, loaded: Any) -> tuple[Callable[[], Any] | None, str]:
    """A call of `reconciler.policy.evaluate` on the loaded estate, or why there is none."""
    evaluate = getattr(policy, "evaluate", None) if policy is not None else None
    if not callable(evaluate):
        return None, "absent (reconciler.policy exports no evaluate)"
    known = {"estate": loaded.estate, "today": ESTATE_DATE, "result": loaded, "loaded": loaded}
    arguments: dict[str, Any] = {}
    for name, parameter in inspect.signature(evaluate).parameters.items():
        if name in known:
            arguments[name] = known[name]
        elif parameter.default is inspect.Parameter.empty:
            return None, f"skipped (evaluate needs '{name}', which the bench does not know)"
    label = f"evaluate({', '.join(arguments)})"
    return (lambda: evaluate(**arguments)), label


def _count(outcome: Any, attribute: str) -> int | None:
    value = getattr(outcome, attribute, None)
    return len(value) if isinstance(value, list) else None


def run_child(directory: str) -> int:
    """Import, load `directory`, evaluate rules; print one JSON line. Exit 1 on input errors."""
    started = time.perf_counter()
    loader = importlib.import_module("reconciler.manifest.loader")
    errors = importlib.import_module("reconciler.errors")
    try:
        policy: Any = importlib.import_module("reconciler.policy")
    except ImportError:
        policy = None
    imported = time.perf_counter()
    rss_imported = _rss_mb()
    try:
        loaded = loader.load_estate([directory])
    except errors.InputError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic.render(), file=sys.stderr)
        print(f"{len(exc.diagnostics)} input errors in the generated estate", file=sys.stderr)
        return 1
    load_done = time.perf_counter()
    rss_loaded = _rss_mb()
    runner, rules = _rule_runner(policy, loaded)
    rules_s: float | None = None
    outcome: Any = None
    if runner is not None:
        rule_start = time.perf_counter()
        outcome = runner()
        rules_s = time.perf_counter() - rule_start
        problems = getattr(outcome, "diagnostics", None) or []
        if problems:  # evaluation stopped before the rules ran: the timing would be a lie
            for diagnostic in problems:
                print(diagnostic.render(), file=sys.stderr)
            print(f"{len(problems)} rule-input errors in the generated estate", file=sys.stderr)
            return 1
    templates = sum(1 for name in loaded.estate.files if name.endswith(".j2"))
    report = {
        "import_s": imported - started,
        "load_s": load_done - imported,
        "rules_s": rules_s,
        "rules": rules,
        "findings": _count(outcome, "findings"),
        "waived": _count(outcome, "waived"),
        "resources": len(loaded.estate.resources),
        "files": len(loaded.estate.files),
        "templates": templates,
        "project_target": getattr(loaded.project, "target", None),
        "rss_after_import_mb": rss_imported,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": _rss_mb(),
    }
    print(json.dumps(report))
    return 0


# --------------------------------------------------------------------------------------------
# The parent: generate once, measure 5 times, report.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    process_s: float
    import_s: float
    load_s: float
    rules_s: float | None
    peak_rss_mb: float
    report: dict[str, Any]

    @property
    def wall_s(self) -> float:
        """The targeted figure: load + render + validate + rules, imports excluded."""
        return self.load_s + (self.rules_s or 0.0)


def _measure(directory: Path) -> Run:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(directory)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        print(f"the measuring child failed (exit {done.returncode}); see its output above", file=sys.stderr)
        raise SystemExit(1)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(
        process_s=elapsed,
        import_s=report["import_s"],
        load_s=report["load_s"],
        rules_s=report["rules_s"],
        peak_rss_mb=report["peak_rss_mb"],
        report=report,
    )


def _figures(label: str, values: Sequence[float]) -> str:
    return f"  {label:<36} min {min(values):7.3f}  median {statistics.median(values):7.3f}  max {max(values):7.3f}"


def run_parent(resources: int, files: int) -> int:
    plan = Plan.make(resources, files)
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as temp:
        root = Path(temp)
        write_estate(root, plan)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(
            f"estate: {plan.resources} resources in {plan.files} manifest files "
            f"({plan.templates} *.yaml.j2 templates) + recon.yaml, {size / 1048576:.1f} MiB"
        )
        print(
            f"  Queue {plan.queues} ({plan.template_queues} rendered from templates), "
            f"RecordingPolicy {plan.policies}, RetentionPolicy {plan.retention}, "
            f"ArchiveBucket {plan.buckets}, MarketDataFeed {plan.feeds}, "
            f"CollectorTopology {plan.topologies}, LegalHold {plan.holds}, Waiver {plan.waivers}"
        )
        runs = [_measure(root) for _ in range(RUNS)]
    first = runs[0].report
    if (first["resources"], first["files"]) != (plan.resources, plan.files):
        print(
            f"the loader saw {first['resources']} resources in {first['files']} files; "
            f"expected {plan.resources} in {plan.files}",
            file=sys.stderr,
        )
        return 1
    walls = [run.wall_s for run in runs]
    wall_min, wall_median = min(walls), statistics.median(walls)
    import_median = statistics.median(run.import_s for run in runs)
    peak = max(run.peak_rss_mb for run in runs)
    overhead = [run.process_s - run.import_s - run.wall_s for run in runs]
    print(f"{RUNS} runs, each in a fresh child process (seconds):")
    print(_figures("interpreter startup + exit", overhead))
    print(_figures("imports (reconciler, pydantic, ...)", [run.import_s for run in runs]))
    print(_figures("load + render + validate", [run.load_s for run in runs]))
    if all(run.rules_s is not None for run in runs):
        print(_figures(f"rules: {first['rules']}", [run.rules_s or 0.0 for run in runs]))
        print(f"  rule findings: {first['findings']} active, {first['waived']} waived")
    else:
        print(f"  rules: {first['rules']}; not timed")
    print(_figures("TARGETED: load (+ rules)", walls))
    print(_figures("whole child process", [run.process_s for run in runs]))
    print("memory (MB, peak RSS of the child, interpreter included):")
    print(_figures("after imports", [run.report["rss_after_import_mb"] for run in runs]))
    print(_figures("after load", [run.report["rss_after_load_mb"] for run in runs]))
    print(_figures("peak", [run.peak_rss_mb for run in runs]))
    wall_ok = wall_median < TARGET_WALL_S
    rss_ok = peak < TARGET_RSS_MB
    print(
        f"targets: wall (median) {wall_median:.3f} s < {TARGET_WALL_S:g} s: "
        f"{'met' if wall_ok else 'MISSED'}; peak RSS {peak:.0f} MB < {TARGET_RSS_MB:g} MB: "
        f"{'met' if rss_ok else 'MISSED'}"
    )
    ok = wall_ok and rss_ok
    print(
        f"BENCH load resources={plan.resources} files={plan.files} templates={plan.templates} "
        f"wall_s={wall_min:.3f} wall_median_s={wall_median:.3f} import_s={import_median:.3f} "
        f"peak_rss_mb={peak:.0f} target_wall_s={TARGET_WALL_S:g} "
        f"target_rss_mb={TARGET_RSS_MB:g} ok={'true' if ok else 'false'}"
    )
    return 0 if ok else 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--resources", type=int, default=10_000, help="resources (default 10000)")
    parser.add_argument("--files", type=int, default=200, help="manifest files (default 200)")
    parser.add_argument("--child", metavar="DIR", help="internal: measure one load of DIR")
    parser.add_argument("--write", metavar="DIR", help="only write the estate into DIR (empty)")
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child)
    if args.write:
        root = Path(args.write)
        root.mkdir(parents=True, exist_ok=True)
        if any(root.iterdir()):
            parser.error(f"{root} is not empty")
        write_estate(root, Plan.make(args.resources, args.files))
        print(f"wrote {args.resources} resources in {args.files} files to {root}")
        return 0
    return run_parent(args.resources, args.files)


if __name__ == "__main__":
    sys.exit(main())
