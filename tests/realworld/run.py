#!/usr/bin/env python3
"""Run published crates' own test suites with and without `#[leak_checked]`.

For each `NAME@VERSION` this script

1. fetches the crate's published source through cargo (a throwaway project
   depending on `NAME = "=VERSION"`, `cargo fetch`) and copies it out of
   cargo's registry cache;
2. makes it buildable standalone (`[workspace]`), adds leakfree-runtime from
   this repository as a dev-dependency, and adds a canary test that leaks a
   plain `tokio::spawn` task on purpose (it must pass plain and be reported
   annotated, or the run could not see leaks; `--no-canary` leaves it out);
3. runs `cargo test --tests --no-fail-fast` (unit and integration tests, no
   doctests) plain, then puts `#[::leakfree_runtime::leak_checked]` in front
   of every `#[tokio::test]` / `#[tokio::test(...)]` attribute in
   `tests/**/*.rs` and `src/**/*.rs` (on the attribute's line, so line numbers
   stay the published ones; comments are left alone, `#[ignore]`d tests stay
   ignored) and runs it again, in each build:

   | build      | RUSTFLAGS              | leakfree-runtime features |
   |------------|------------------------|---------------------------|
   | `stable`   |                        | taskdump (inert here)     |
   | `unstable` | `--cfg tokio_unstable` |                           |
   | `taskdump` | `--cfg tokio_unstable` | taskdump                  |

   Plain and annotated runs of a build use one source dir, one manifest and
   one target dir, so they resolve the same versions with the same features:
   a difference between the two runs is the attribute's doing.
4. prints, per build, the tests annotated, the tests passing plain, the tests
   failing only when annotated (with leakfree's report from the test output,
   and the spawn sites the reports name) and the tests failing in both, and
   writes one JSON file per crate and build to the output dir.

Exit status: 0 when every run happened (whatever the crates' tests did);
1 with `--expect-clean` when a test fails only in the annotated run or the
annotated copy does not build; 2 on a failure of the script itself (a fetch,
the plain build, a timeout).

The crates of REALWORLD.md, with the options their suites need, are in
KNOWN below: `run.py bb8@0.9.1` uses them, `run.py --all` runs them all.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "leakfree-runtime"
ATTR = "#[::leakfree_runtime::leak_checked]"

# Options per crate: features its suite needs, libtest filters for tests that
# cannot run here whatever leakfree does, dev-dependencies only its benches use
# (dropped to keep builds short).
KNOWN: dict[str, dict] = {
    "bb8@0.9.1": {},
    "deadpool@0.13.1": {
        "features": ["rt_tokio_1"],
        "drop_dev_deps": ["criterion"],
    },
    "tokio-stream@0.1.19": {
        "all_features": True,
    },
    "hyper-util@0.1.21": {
        "features": ["full"],
        # Binds the client to a non-loopback address of this machine's
        # interfaces: test traffic here stays loopback to loopback.
        "ignore": [
            ("src/client/legacy/connect/http.rs", "local_address"),
            # Resolves a public host name (SOCKS with local DNS): a lookup
            # through the machine's resolver, not loopback traffic.
            ("tests/proxy.rs", "test_socks_v5_with_locally_resolved_domain_works"),
        ],
    },
    "async-stream@0.3.6": {
        # trybuild UI cases: compiler output pinned to an older rustc (and
        # a test named `test` in tests/for_await.rs too, so no --skip).
        "ignore": [("tests/stream.rs", "test")],
        # tests/stream.rs uses tokio_test, which the published manifest lacks.
        "add_dev_deps": {"tokio-test": "0.4"},
    },
}

BUILDS = {
    "stable": {"rustflags": "", "taskdump": True},
    "unstable": {"rustflags": "--cfg tokio_unstable", "taskdump": False},
    "taskdump": {"rustflags": "--cfg tokio_unstable", "taskdump": True},
}


class ScriptError(Exception):
    """A failure of the script or its set-up, not of a crate's tests."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd, *, cwd, env=None, timeout, logfile: Path | None = None) -> tuple[int, str, float]:
    """Runs `cmd` in its own process group, stdout and stderr merged (cargo's
    `Running ...` lines stay in order with the test binaries' output).
    Returns (exit code, output, seconds); a timeout kills the whole group."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        text = out.decode("utf-8", "replace")
        if logfile:
            logfile.write_text(text)
        raise ScriptError(f"timed out after {timeout}s: {' '.join(map(str, cmd))} (log: {logfile})")
    text = out.decode("utf-8", "replace")
    if logfile:
        logfile.write_text(text)
    return proc.returncode, text, time.monotonic() - start


# ---- fetching ---------------------------------------------------------------


def cargo_home() -> Path:
    return Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))


def fetch(name: str, version: str, work: Path, env: dict) -> Path:
    """The crate's published source, from cargo's registry cache."""
    proj = work / "fetch"
    (proj / "src").mkdir(parents=True, exist_ok=True)
    (proj / "src" / "lib.rs").write_text("")
    (proj / "Cargo.toml").write_text(
        "[package]\nname = \"leakfree-realworld-fetch\"\nversion = \"0.0.0\"\n"
        "edition = \"2021\"\npublish = false\n\n[workspace]\n\n"
        f"[dependencies]\n{name} = \"={version}\"\n"
    )
    code, out, _ = run(["cargo", "fetch"], cwd=proj, env=env, timeout=600)
    if code != 0:
        raise ScriptError(f"cargo fetch of {name}@{version} failed:\n{out[-3000:]}")
    found = sorted((cargo_home() / "registry" / "src").glob(f"*/{name}-{version}"))
    found = [p for p in found if (p / "Cargo.toml").is_file()]
    if not found:
        raise ScriptError(f"{name}-{version} not in {cargo_home() / 'registry' / 'src'} after cargo fetch")
    return found[0]


# ---- preparing the copies ---------------------------------------------------


def drop_toml_tables(text: str, prefix: str) -> str:
    """Removes the tables `[prefix]` and `[prefix.*]` of a normalized manifest."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        m = re.match(r"^\[([^\[\]]+)\]\s*$", line)
        if m:
            head = m.group(1).strip()
            skipping = head == prefix or head.startswith(prefix + ".")
        if not skipping:
            out.append(line)
    return "".join(out)


def prepare_manifest(path: Path, opts: dict, features: list[str]) -> None:
    text = path.read_text()
    if re.search(r"^\[workspace\]", text, re.M):
        raise ScriptError(f"{path} already has a [workspace] table")
    if re.search(r"^\[dev-dependencies\.leakfree-runtime\]", text, re.M) or re.search(
        r"^leakfree-runtime\s*=", text, re.M
    ):
        raise ScriptError(f"{path} already names leakfree-runtime")
    for dep in opts.get("drop_dev_deps", []):
        text = drop_toml_tables(text, f"dev-dependencies.{dep}")
    # Benches are not run; their targets may need the dropped dev-dependencies.
    if opts.get("drop_dev_deps"):
        text = re.sub(r"(?m)^\[\[bench\]\]\n(?:(?!\[).*\n)*", "", text)
    feats = ", ".join(json.dumps(f) for f in features)
    for dep, req in opts.get("add_dev_deps", {}).items():
        if re.search(rf"^\[dev-dependencies\.{re.escape(dep)}\]", text, re.M):
            raise ScriptError(f"{path} already has the dev-dependency {dep}")
        text = text.rstrip("\n") + f"\n\n[dev-dependencies.{dep}]\nversion = {json.dumps(req)}\n"
    text = text.rstrip("\n") + (
        "\n\n# Added by tests/realworld/run.py: a standalone build, and leakfree.\n"
        "[workspace]\n\n"
        "[dev-dependencies.leakfree-runtime]\n"
        f"path = {json.dumps(str(RUNTIME))}\n"
        f"features = [{feats}]\n"
    )
    if opts.get("canary", True):
        # Published manifests list their test targets (autotests = false).
        text += ("\n[[test]]\n"
                 f"name = {json.dumps(Path(CANARY_FILE).stem)}\n"
                 f"path = {json.dumps(CANARY_FILE)}\n")
    path.write_text(text)


TOKIO_TEST = re.compile(r"^(?P<indent>\s*)#\[\s*(?:::)?tokio::test\b(?P<rest>.*)$")
FN_NAME = re.compile(r"\bfn\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Annotated:
    file: str
    line: int
    fn: str
    attr: str
    ignored: bool


@dataclass
class Annotation:
    tests: list[Annotated] = field(default_factory=list)
    # Lines naming tokio::test the script did not annotate (e.g. `use tokio::test;`).
    untouched: list[str] = field(default_factory=list)
    start_paused: bool = False


def block_comment_depth(line: str, depth: int) -> int:
    """The `/* */` nesting depth after `line` (line comments and the common
    string cases are skipped; good enough for test files)."""
    i, n = 0, len(line)
    in_str = False
    while i < n:
        two = line[i:i + 2]
        if depth == 0 and not in_str and two == "//":
            break
        if depth == 0 and line[i] == '"' and (i == 0 or line[i - 1] != "\\"):
            in_str = not in_str
        elif not in_str and two == "/*":
            depth += 1
            i += 1
        elif not in_str and depth > 0 and two == "*/":
            depth -= 1
            i += 1
        i += 1
    return depth


def annotate(root: Path) -> Annotation:
    """Puts the attribute above every `#[tokio::test...]` in tests/ and src/."""
    result = Annotation()
    files = sorted(p for d in ("tests", "src") if (root / d).is_dir() for p in (root / d).rglob("*.rs"))
    for path in files:
        rel = str(path.relative_to(root))
        canary = rel == CANARY_FILE
        lines = path.read_text().splitlines(keepends=True)
        out: list[str] = []
        changed = False
        depth = 0  # inside /* ... */ (tests commented out that way stay so)
        for i, line in enumerate(lines):
            starts_in_comment = depth > 0
            depth = block_comment_depth(line, depth)
            if starts_in_comment:
                out.append(line)
                continue
            m = TOKIO_TEST.match(line)
            if m:
                prev = out[-1].strip() if out else ""
                if "leak_checked" not in prev and "leak_checked" not in line:
                    # On the same line: line!() and the line numbers in
                    # reports stay those of the published source.
                    line = f"{m.group('indent')}{ATTR} {line.lstrip()}"
                    changed = True
                # The fn this attribute is on, and whether #[ignore] is among
                # its attributes (above or below).
                fn, ignored = "?", False
                for j in range(i + 1, min(i + 30, len(lines))):
                    if re.match(r"^\s*#\[\s*ignore\b", lines[j]):
                        ignored = True
                    fm = FN_NAME.search(lines[j])
                    if fm and not lines[j].lstrip().startswith("#"):
                        fn = fm.group("name")
                        break
                for j in range(i - 1, max(i - 10, -1), -1):
                    s = lines[j].strip()
                    if not s.startswith("#[") and not s.startswith("//"):
                        break
                    if re.match(r"^#\[\s*ignore\b", s):
                        ignored = True
                attr = line.strip().removeprefix(ATTR).strip()
                if "start_paused" in attr:
                    result.start_paused = True
                if not canary:
                    result.tests.append(Annotated(rel, i + 1, fn, attr, ignored))
            elif "tokio::test" in line and not line.lstrip().startswith("//"):
                result.untouched.append(f"{rel}:{i + 1}: {line.strip()}")
            out.append(line)
        if changed:
            path.write_text("".join(out))
    return result


# ---- running and reading cargo test ----------------------------------------

RUNNING = re.compile(r"^\s+Running (?P<what>.+?) \((?P<exe>[^)]*)\)\s*$")
RESULT = re.compile(r"^test (?P<name>\S+) \.\.\. (?P<status>ok|FAILED|ignored)\b")
SECTION = re.compile(r"^---- (?P<name>\S+) stdout ----$")
SUMMARY = re.compile(r"^test result: (?P<verdict>ok|FAILED)\. (?P<passed>\d+) passed; (?P<failed>\d+) failed; (?P<ignored>\d+) ignored")


@dataclass
class Suite:
    status: dict[str, str] = field(default_factory=dict)  # "binary :: test" -> ok/FAILED/ignored
    output: dict[str, str] = field(default_factory=dict)  # failures' captured output
    binaries: dict[str, str] = field(default_factory=dict)  # binary -> "ok"/"FAILED"/"no result (crashed?)"


def key(binary: str, test: str) -> str:
    return f"{binary} :: {test}"


def parse(output: str) -> Suite:
    suite = Suite()
    binary = None
    section: str | None = None
    buf: list[str] = []

    def close_section():
        nonlocal section, buf
        if section is not None and binary is not None:
            suite.output[key(binary, section)] = "".join(buf).rstrip("\n")
        section, buf = None, []

    for line in output.splitlines(keepends=True):
        bare = line.rstrip("\n")
        m = RUNNING.match(bare)
        if m:
            close_section()
            binary = m.group("what")
            suite.binaries[binary] = "no result line (crashed or killed)"
            continue
        if binary is None:
            continue
        m = SECTION.match(bare)
        if m:
            close_section()
            section = m.group("name")
            continue
        if section is not None:
            if bare in ("failures:", "successes:") or SUMMARY.match(bare):
                close_section()
            else:
                buf.append(line)
                continue
        m = RESULT.match(bare)
        if m:
            suite.status[key(binary, m.group("name"))] = m.group("status")
            continue
        m = SUMMARY.match(bare)
        if m:
            suite.binaries[binary] = m.group("verdict")
    close_section()
    return suite


def leakfree_reports(text: str) -> list[str]:
    """The `leakfree: ...` reports in a failed test's output, up to and with
    each one's `enforced:` line."""
    reports, cur = [], None
    for line in text.splitlines():
        if cur is None:
            i = line.find("leakfree: ")
            if i >= 0:
                cur = [line[i:]]
        else:
            cur.append(line)
            if line.startswith("  enforced:"):
                reports.append("\n".join(cur))
                cur = None
    if cur is not None:
        reports.append("\n".join(cur))
    return reports


def cargo_test(src: Path, target: Path, build: str, opts: dict, features_args: list[str], env: dict,
               logdir: Path, tag: str, build_timeout: int, test_timeout: int) -> dict:
    benv = dict(env)
    benv["CARGO_TARGET_DIR"] = str(target)
    benv["RUSTFLAGS"] = BUILDS[build]["rustflags"]
    base = ["cargo", "test", "--tests", "--no-fail-fast"] + features_args
    if BUILDS[build]["taskdump"]:
        base += ["--features", "leakfree-runtime/taskdump"]
    code, out, build_secs = run(base + ["--no-run"], cwd=src, env=benv, timeout=build_timeout,
                                logfile=logdir / f"{build}-{tag}-build.log")
    if code != 0:
        return {"built": False, "build_seconds": round(build_secs, 1), "build_log": tail_errors(out)}
    libtest = []
    for s in opts.get("skip", []):
        libtest += ["--skip", s]
    if libtest:
        libtest = ["--exact"] + libtest
    cmd = base + (["--"] + libtest if libtest else [])
    code, out, test_secs = run(cmd, cwd=src, env=benv, timeout=test_timeout,
                               logfile=logdir / f"{build}-{tag}-test.log")
    suite = parse(out)
    return {
        "built": True,
        "build_seconds": round(build_secs, 1),
        "test_seconds": round(test_secs, 1),
        "exit_code": code,
        "suite": suite,
    }


def tail_errors(out: str) -> str:
    lines = out.splitlines()
    errs = [i for i, l in enumerate(lines) if l.startswith("error")]
    start = errs[0] if errs else max(0, len(lines) - 60)
    return "\n".join(lines[start:start + 80])


# ---- one crate --------------------------------------------------------------


def match_annotated(ann: Annotated, tests: list[str]) -> list[str]:
    """The result keys an annotated fn shows up as: same binary family, test
    name ending in `::fn` (or equal to it)."""
    if ann.file.startswith("tests/"):
        # tests/foo.rs and tests/foo/main.rs are the binary `tests/foo.rs`
        # or `tests/foo/main.rs`; a module file tests/foo/bar.rs belongs to
        # tests/foo/main.rs.
        parts = Path(ann.file).parts
        fam = "tests/" + (parts[1] if len(parts) > 2 else parts[1])
        in_family = lambda b: b.startswith(fam.removesuffix(".rs"))
    else:
        in_family = lambda b: b.startswith("unittests ")
    out = []
    for k in tests:
        b, t = k.split(" :: ", 1)
        if in_family(b) and (t == ann.fn or t.endswith("::" + ann.fn)):
            out.append(k)
    return out


SPAWNED_AT = re.compile(r"spawned at (\S+?), alive")


def canary_verdict(plain: Suite, annotated: Suite) -> dict:
    k = key(CANARY_BINARY, CANARY_TEST)
    reports = leakfree_reports(annotated.output.get(k, ""))
    caught = plain.status.get(k) == "ok" and annotated.status.get(k) == "FAILED" and bool(reports)
    verdict = {"caught": caught, "plain": plain.status.get(k), "annotated": annotated.status.get(k),
               "report": reports}
    for suite in (plain, annotated):
        suite.status.pop(k, None)
        suite.output.pop(k, None)
        suite.binaries.pop(CANARY_BINARY, None)
    return verdict


def classify(plain: Suite, annotated: Suite, ann: Annotation) -> dict:
    keys_plain = set(plain.status)
    keys_ann = set(annotated.status)
    passing_plain = sorted(k for k, s in plain.status.items() if s == "ok")
    annotated_keys = set()
    unmatched = []
    for a in ann.tests:
        ks = match_annotated(a, sorted(keys_ann | keys_plain))
        if ks:
            annotated_keys.update(ks)
        else:
            unmatched.append(f"{a.file}:{a.line} fn {a.fn}")
    only_annotated, both, only_plain = [], [], []
    for k in sorted(keys_plain | keys_ann):
        p, a = plain.status.get(k), annotated.status.get(k)
        if a == "FAILED" and p == "ok":
            text = annotated.output.get(k, "")
            reports = leakfree_reports(text)
            only_annotated.append({
                "test": k,
                "annotated": k in annotated_keys,
                "leakfree_report": reports,
                "output": text if not reports else None,
            })
        elif a == "FAILED" and p == "FAILED":
            both.append({"test": k, "plain_output": first_lines(plain.output.get(k, ""))})
        elif p == "FAILED" and a != "FAILED":
            only_plain.append(k)
    sites: dict[str, int] = {}
    unnamed = 0
    for f in only_annotated:
        found = set()
        for rep in f["leakfree_report"]:
            found.update(SPAWNED_AT.findall(rep))
        for loc in found:
            sites[loc] = sites.get(loc, 0) + 1
        if f["leakfree_report"] and not found:
            unnamed += 1
    return {
        "tests_annotated": len(ann.tests),
        # Spawn sites named by the annotated-only failures' reports, and in how
        # many tests; reports naming none (stable builds only count plain
        # tokio::spawn tasks).
        "spawn_sites": dict(sorted(sites.items(), key=lambda kv: (-kv[1], kv[0]))),
        "reports_without_spawn_site": unnamed,
        "annotated_ignored": sum(1 for a in ann.tests if a.ignored),
        "annotated_run_ok": sum(1 for k in annotated_keys if annotated.status.get(k) == "ok"),
        "annotated_unmatched": unmatched,
        "tests_total": len(keys_plain),
        "tests_passing_plain": len(passing_plain),
        "annotated_passing_plain": sum(1 for k in annotated_keys if plain.status.get(k) == "ok"),
        "annotated_only_failures": only_annotated,
        "failing_in_both": both,
        "failing_plain_only": only_plain,
        "missing_in_annotated": sorted(keys_plain - keys_ann),
        "binaries_plain": plain.binaries,
        "binaries_annotated": annotated.binaries,
    }


def first_lines(text: str, n: int = 12) -> str:
    return "\n".join(text.splitlines()[:n])


CANARY_FILE = "tests/leakfree_realworld_canary.rs"
CANARY_BINARY = "tests/leakfree_realworld_canary.rs"
CANARY_TEST = "leakfree_realworld_canary_leaks_a_task"
CANARY = f"""// Added by leakfree's tests/realworld/run.py, not part of the crate: a test
// that leaks a plain tokio::spawn task. It passes plain and must fail
// annotated, in every build; if it does not, the run saw nothing.
#[tokio::test]
async fn {CANARY_TEST}() {{
    tokio::spawn(std::future::pending::<()>());
}}
"""


def fresh_copy(published: Path, dst: Path, opts: dict) -> None:
    """A writable copy of the published source, every file's mtime now (the
    registry's are old: cargo must not take a previous build as fresh), with
    the crate's `ignore` option applied."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(published, dst, copy_function=shutil.copyfile)
    now = time.time()
    for p in [dst, *dst.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
        os.utime(p, (now, now))
    if opts.get("canary", True):
        (dst / CANARY_FILE).parent.mkdir(exist_ok=True)
        (dst / CANARY_FILE).write_text(CANARY)
    for rel, fn in opts.get("ignore", []):
        path = dst / rel
        lines = path.read_text().splitlines(keepends=True)
        for i, line in enumerate(lines):
            if re.search(rf"\bfn\s+{re.escape(fn)}\s*\(", line):
                # Above the fn's attributes.
                j = i
                while j > 0 and lines[j - 1].lstrip().startswith("#["):
                    j -= 1
                indent = re.match(r"\s*", lines[i]).group(0)
                lines.insert(j, f"{indent}#[ignore = \"leakfree realworld: cannot run here\"]\n")
                break
        else:
            raise ScriptError(f"ignore: no fn {fn} in {rel}")
        path.write_text("".join(lines))


def run_crate(spec: str, opts: dict, builds: list[str], work: Path, out: Path, env: dict,
              build_timeout: int, test_timeout: int) -> list[dict]:
    name, version = spec.split("@", 1)
    cdir = work / f"{name}-{version}"
    cdir.mkdir(parents=True, exist_ok=True)
    logdir = out / f"{name}-{version}" / "logs"
    logdir.mkdir(parents=True, exist_ok=True)

    log(f"==> {spec}: fetching")
    published = fetch(name, version, cdir, env)

    src = cdir / "src"
    # The annotation is computed once on a scratch copy, for the log line and
    # the option flags; each build then annotates its own fresh copy.
    fresh_copy(published, src, opts)
    ann = annotate(src)
    features = ["test-util"] if ann.start_paused else []
    log(f"    {len(ann.tests)} #[tokio::test] annotated "
        f"({sum(1 for a in ann.tests if a.ignored)} #[ignore]d)"
        + (f"; {len(ann.untouched)} other lines name tokio::test" if ann.untouched else ""))

    fargs = []
    if opts.get("all_features"):
        fargs.append("--all-features")
    if opts.get("no_default_features"):
        fargs.append("--no-default-features")
    if opts.get("features"):
        fargs += ["--features", ",".join(opts["features"])]

    results = []
    for build in builds:
        target = cdir / f"target-{build}"
        # One source dir and one target dir per build: the plain run, then the
        # same dir annotated (a newer mtime, so cargo rebuilds just the crate).
        # Two copies in one target dir would not do: a path package's
        # artifacts are named by name and version, not by where it is.
        fresh_copy(published, src, opts)
        prepare_manifest(src / "Cargo.toml", opts, features)
        log(f"==> {spec} [{build}]: plain")
        plain = cargo_test(src, target, build, opts, fargs, env, logdir, "plain", build_timeout, test_timeout)
        if not plain["built"]:
            raise ScriptError(f"{spec} [{build}]: the plain copy does not build:\n{plain['build_log']}")
        log(f"    built in {plain['build_seconds']}s, tests ran {plain['test_seconds']}s")
        annotate(src)
        log(f"==> {spec} [{build}]: annotated")
        annotated = cargo_test(src, target, build, opts, fargs, env, logdir, "annotated", build_timeout, test_timeout)
        record = {
            "crate": name,
            "version": version,
            "build": build,
            "rustflags": BUILDS[build]["rustflags"],
            "leakfree_features": (["taskdump"] if BUILDS[build]["taskdump"] else []) + features,
            "cargo_args": fargs,
            "skipped": opts.get("skip", []),
            "ignored_here": [f"{f}: fn {n}" for f, n in opts.get("ignore", [])],
            "dropped_dev_deps": opts.get("drop_dev_deps", []),
            "added_dev_deps": opts.get("add_dev_deps", {}),
            "annotated_tests": [a.__dict__ for a in ann.tests],
            "not_annotated_lines": ann.untouched,
            "plain_seconds": {"build": plain["build_seconds"], "test": plain["test_seconds"]},
        }
        if not annotated["built"]:
            log(f"    the annotated copy does not build")
            record.update({"annotated_built": False, "annotated_build_log": annotated["build_log"],
                           "tests_annotated": len(ann.tests), "annotated_only_failures": [],
                           "tests_total": len(plain["suite"].status),
                           "tests_passing_plain": sum(1 for s in plain["suite"].status.values() if s == "ok")})
        else:
            log(f"    built in {annotated['build_seconds']}s, tests ran {annotated['test_seconds']}s")
            record["annotated_built"] = True
            if opts.get("canary", True):
                c = canary_verdict(plain["suite"], annotated["suite"])
                record["canary"] = c
                if not c["caught"]:
                    (out / f"{name}-{version}" / f"{build}.json").write_text(json.dumps(record, indent=2) + "\n")
                    raise ScriptError(f"{spec} [{build}]: the canary test that leaks a task was not "
                                      f"reported in the annotated run: the run cannot see leaks "
                                      f"(logs: {logdir})")
            record["annotated_seconds"] = {"build": annotated["build_seconds"], "test": annotated["test_seconds"]}
            record.update(classify(plain["suite"], annotated["suite"], ann))
        (out / f"{name}-{version}" / f"{build}.json").write_text(json.dumps(record, indent=2) + "\n")
        results.append(record)
    return results


# ---- summary ----------------------------------------------------------------


def summarize(results: list[dict]) -> str:
    lines = []
    hdr = (f"{'crate':<24} {'build':<9} {'annotated':>9} {'ran ok':>7} {'pass plain':>10} "
           f"{'leakfree-only':>13} {'both':>5} {'canary':>7}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in results:
        if not r.get("annotated_built", True):
            lines.append(f"{r['crate'] + '@' + r['version']:<24} {r['build']:<9} "
                         f"{r['tests_annotated']:>9}  annotated copy does not build")
            continue
        lines.append(
            f"{r['crate'] + '@' + r['version']:<24} {r['build']:<9} {r['tests_annotated']:>9} "
            f"{r['annotated_run_ok']:>7} {str(r['tests_passing_plain']) + '/' + str(r['tests_total']):>10} "
            f"{len(r['annotated_only_failures']):>13} {len(r['failing_in_both']):>5} "
            f"{('caught' if r['canary']['caught'] else 'MISSED') if 'canary' in r else '-':>7}")
    lines.append("")
    lines.append("annotated: #[tokio::test] attributes given #[leak_checked]; ran ok: annotated tests that passed "
                 "annotated; pass plain: passing/total tests in the plain run; leakfree-only: failing only "
                 "annotated; both: failing plain and annotated (not leakfree's); canary: the added test that leaks "
                 "on purpose was reported (it is not in the other counts)")
    for r in results:
        if r.get("spawn_sites") or r.get("reports_without_spawn_site"):
            lines.append("")
            lines.append(f"[{r['crate']}@{r['version']} {r['build']}] spawn sites in leakfree's reports "
                         "(tests naming each):")
            for loc, n in r.get("spawn_sites", {}).items():
                lines.append(f"    {loc}  {n}")
            if r.get("reports_without_spawn_site"):
                lines.append(f"    (no spawn site: counted only)  {r['reports_without_spawn_site']}")
    for r in results:
        for f in r.get("annotated_only_failures", []):
            lines.append("")
            lines.append(f"[{r['crate']}@{r['version']} {r['build']}] fails only annotated: {f['test']}")
            if f["leakfree_report"]:
                for rep in f["leakfree_report"]:
                    lines.extend("    " + l for l in rep.splitlines())
            else:
                lines.append("    (no leakfree report in its output:)")
                lines.extend("    " + l for l in (f["output"] or "").splitlines()[:20])
        for f in r.get("failing_in_both", []):
            lines.append(f"[{r['crate']}@{r['version']} {r['build']}] fails plain and annotated: {f['test']}")
        if not r.get("annotated_built", True):
            lines.append("")
            lines.append(f"[{r['crate']}@{r['version']} {r['build']}] annotated copy does not build:")
            lines.extend("    " + l for l in r["annotated_build_log"].splitlines()[:30])
        for u in r.get("annotated_unmatched", []):
            lines.append(f"[{r['crate']}@{r['version']} {r['build']}] annotated fn without a test result: {u}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("crates", nargs="*", help="NAME@VERSION (options from KNOWN if listed there)")
    ap.add_argument("--all", action="store_true", help="every crate in KNOWN")
    ap.add_argument("--builds", default="stable,unstable,taskdump",
                    help="comma-separated subset of: " + ", ".join(BUILDS))
    ap.add_argument("--work", type=Path, default=REPO / "target" / "realworld" / "work",
                    help="copies and target dirs (kept between runs so builds are reused)")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "realworld" / "out",
                    help="JSON results and logs")
    ap.add_argument("--features", default=None, help="cargo features for a crate not in KNOWN")
    ap.add_argument("--skip", action="append", default=[], help="exact test name to skip (libtest --exact --skip)")
    ap.add_argument("--no-canary", action="store_true",
                    help="do not add the test that leaks on purpose (it checks that leaks are seen)")
    ap.add_argument("--expect-clean", action="store_true",
                    help="exit 1 if a test fails only annotated or the annotated copy does not build")
    ap.add_argument("--build-timeout", type=int, default=1800, help="seconds per cargo build")
    ap.add_argument("--test-timeout", type=int, default=900, help="seconds per test run")
    args = ap.parse_args()

    specs = list(KNOWN) if args.all else args.crates
    if not specs:
        ap.error("name a crate (NAME@VERSION) or pass --all")
    builds = [b.strip() for b in args.builds.split(",") if b.strip()]
    for b in builds:
        if b not in BUILDS:
            ap.error(f"unknown build {b!r}: one of {', '.join(BUILDS)}")

    env = dict(os.environ)
    env.setdefault("CARGO_BUILD_JOBS", "1")
    env["CARGO_TERM_COLOR"] = "never"
    env.pop("RUSTFLAGS", None)
    env.pop("CARGO_ENCODED_RUSTFLAGS", None)
    for v in ("LEAKFREE_POLICY", "LEAKFREE_GRACE"):
        env.pop(v, None)
    env["RUST_BACKTRACE"] = "0"

    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for spec in specs:
            if "@" not in spec:
                raise ScriptError(f"{spec!r}: expected NAME@VERSION")
            opts = dict(KNOWN.get(spec, {}))
            if args.features is not None:
                opts["features"] = [f for f in args.features.split(",") if f]
            if args.no_canary:
                opts["canary"] = False
            if args.skip:
                opts["skip"] = list(opts.get("skip", [])) + args.skip
            results += run_crate(spec, opts, builds, args.work, args.out, env,
                                 args.build_timeout, args.test_timeout)
    except ScriptError as e:
        if results:
            print(summarize(results))
        log(f"error: {e}")
        return 2
    text = summarize(results)
    print(text)
    (args.out / "summary.txt").write_text(text + "\n")
    log(f"\nresults: {args.out}")
    if args.expect_clean and any(r.get("annotated_only_failures") or not r.get("annotated_built", True)
                                 for r in results):
        log("error: --expect-clean: a test failed only in the annotated run")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
