"""Exclusions: exact names, paths and globs, never substrings; hashes, users, hosts, destinations, ports."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from stagehunt.config import DEFAULT_EXCLUDED_IMAGES, ExclusionConfig
from stagehunt.exclusions import (
    DestinationMatcher,
    ExactMatcher,
    Exclusions,
    HashMatcher,
    ImageMatcher,
    base_name,
    parse_hashes,
)

DEFAULTS = ImageMatcher(ExclusionConfig().all_images())


# -- images: the seed's substring faults ------------------------------------------------------------

@pytest.mark.parametrize("image", [
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
    r"C:\Users\bob\AppData\Local\Microsoft\OneDrive\OneDrive.exe",
    r"c:\windows\system32\SVCHOST.EXE",
    r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.2201.10-0\MsMpEng.exe",
    r"\device\harddiskvolume2\windows\system32\svchost.exe",  # Security 5156 NT device path
    "/usr/lib/firefox/firefox.exe",
    "OUTLOOK.EXE",  # a bare name as some sources log it
])
def test_default_names_exclude_the_real_binaries(image: str) -> None:
    assert DEFAULTS.excludes(image)


@pytest.mark.parametrize("image", [
    r"C:\Users\Public\chrome_update.exe",  # *chrome* excluded this
    r"C:\Users\Public\OneDriveEvil.exe",
    r"C:\Users\Public\svchost.exe.bak",
    r"C:\Users\Public\xsvchost.exe",
    r"C:\Users\Public\Teams.exe.exe",
    r"C:\Users\Public\MsMpEng.dll",
    r"C:\Users\Public\MicrosoftTeamsUpdate.exe",  # *Teams* excluded this
    r"C:\Program Files\Google\Chrome\Application\chrome_proxy.exe",
    r"C:\chrome.exe\payload.exe",  # the excluded name as a directory, not the file
    r"C:\Users\Public\сhrome.exe",  # Cyrillic с: a look-alike is another name
    r"C:\Users\Public\chrome.exe ",
    "",
])
def test_default_names_never_exclude_by_substring(image: str) -> None:
    assert not DEFAULTS.excludes(image)


def test_none_and_non_strings_are_not_excluded() -> None:
    assert not DEFAULTS.excludes(None)
    assert not DEFAULTS.excludes(42)


def test_full_path_entries_are_exact_and_case_and_separator_insensitive() -> None:
    m = ImageMatcher([r"C:\Tools\agent.exe"])
    assert m.match(r"c:\tools\AGENT.EXE") == r"C:\Tools\agent.exe"
    assert m.excludes("C:/Tools/agent.exe")
    assert not m.excludes(r"D:\Tools\agent.exe")
    assert not m.excludes(r"C:\Tools\sub\agent.exe")
    assert not m.excludes("agent.exe")


def test_path_globs_star_stays_within_one_directory() -> None:
    m = ImageMatcher([r"C:\Program Files\*\updater.exe"])
    assert m.excludes(r"C:\Program Files\Acme\updater.exe")
    assert m.excludes(r"c:\program files\ACME\Updater.EXE")
    assert not m.excludes(r"C:\Program Files\Acme\bin\updater.exe")
    assert not m.excludes(r"C:\Users\Public\updater.exe")
    assert not m.excludes(r"C:\Program Files\Acme\updater.exe.exe")


def test_double_star_crosses_directories() -> None:
    m = ImageMatcher([r"C:\Program Files\**\updater.exe", "/opt/**"])
    assert m.excludes(r"C:\Program Files\Acme\bin\updater.exe")
    assert m.excludes(r"C:\Program Files\updater.exe")  # `**\` may be zero directories
    assert not m.excludes(r"C:\Program Files\Acme\bin\updater2.exe")
    assert m.excludes("/opt/vendor/bin/agent")
    assert not m.excludes("/optx/agent")


def test_question_mark_is_one_character_not_a_separator() -> None:
    m = ImageMatcher(["C:/Tools/agent?.exe"])
    assert m.excludes(r"C:\Tools\agent1.exe")
    assert not m.excludes(r"C:\Tools\agent.exe")
    assert not m.excludes(r"C:\Tools\agent12.exe")
    assert not ImageMatcher(["C:/Tools?agent.exe"]).excludes("C:/Tools/agent.exe")


def test_name_globs_match_the_file_name_only() -> None:
    m = ImageMatcher(["chrome*.exe"])
    assert m.excludes(r"C:\Users\Public\chrome_update.exe")  # asked for explicitly, so yes
    assert not m.excludes(r"C:\chrome_dir\payload.exe")


def test_brackets_in_entries_are_literal() -> None:
    m = ImageMatcher(["setup[1].exe", "C:/Temp/*/tool[2].exe"])
    assert m.excludes(r"C:\Downloads\setup[1].exe")
    assert not m.excludes(r"C:\Downloads\setup1.exe")
    assert m.excludes(r"C:\Temp\x\tool[2].exe")
    assert not m.excludes(r"C:\Temp\x\tool2.exe")


def test_regex_characters_in_entries_are_literal() -> None:
    m = ImageMatcher(["a.b*.exe", r"C:\x+y\(z)\*.exe"])
    assert not m.excludes("aXb1.exe")
    assert m.excludes("a.b1.exe")
    assert m.excludes(r"C:\x+y\(z)\q.exe")
    assert not m.excludes(r"C:\xxy\(z)\q.exe")


def test_use_defaults_false_drops_the_seed_list() -> None:
    m = ImageMatcher(ExclusionConfig(use_defaults=False, images=("agent.exe",)).all_images())
    assert not m.excludes(r"C:\Program Files\Google\Chrome\Application\chrome.exe")
    assert m.excludes(r"C:\x\agent.exe")


def test_excluded_takes_distinct_values_or_one_string() -> None:
    images = [r"C:\a\chrome.exe", r"C:\a\chrome.exe", r"C:\b\payload.exe", None, r"C:\c\CHROME.EXE"]
    assert DEFAULTS.excluded(images) == {r"C:\a\chrome.exe", r"C:\c\CHROME.EXE"}
    # a lone string is one value, not an iterable of one-letter "images"
    assert DEFAULTS.excluded(r"C:\a\chrome.exe") is True
    assert DEFAULTS.excluded("payload.exe") is False


def test_base_name_handles_both_separators() -> None:
    assert base_name(r"C:\Windows\System32\cmd.exe") == "cmd.exe"
    assert base_name("/usr/bin/curl") == "curl"
    assert base_name("java") == "java"
    assert base_name(r"C:\mixed/sep\Tool.EXE") == "tool.exe"


names = st.text(alphabet=st.characters(blacklist_characters="\\/*?\x00", blacklist_categories=("Cs",)),
                min_size=1, max_size=20)
dirs = st.lists(st.text(alphabet=st.characters(blacklist_characters="\\/\x00", blacklist_categories=("Cs",)),
                        min_size=1, max_size=12), max_size=5)


@given(names, names, dirs, st.sampled_from(["\\", "/"]))
def test_a_name_never_excludes_an_image_whose_file_name_differs(entry: str, other: str, parts: list[str],
                                                               sep: str) -> None:
    assume(entry.lower() != other.lower())
    image = sep.join([*parts, other])
    assert not ImageMatcher([entry]).excludes(image)


@given(names, dirs, st.sampled_from(["\\", "/"]), st.sampled_from([str.upper, str.lower, str.swapcase]))
def test_a_name_excludes_itself_in_any_directory_and_any_case(entry: str, parts: list[str], sep: str,
                                                              case) -> None:
    assume(case(entry).lower() == entry.lower())  # a few letters change length or meaning when re-cased
    image = sep.join([*parts, case(entry)])
    assert ImageMatcher([entry]).excludes(image)


@given(st.text(max_size=60))
def test_default_matcher_never_raises(image: str) -> None:
    assert isinstance(DEFAULTS.excludes(image), bool)


DEFAULT_NAMES = {n.lower() for n in DEFAULT_EXCLUDED_IMAGES}


@given(st.sampled_from(DEFAULT_EXCLUDED_IMAGES), st.text(min_size=1, max_size=5))
def test_a_default_name_with_text_added_is_excluded_only_if_it_is_another_default_name(name: str, extra: str) -> None:
    assume("\\" not in extra and "/" not in extra)
    for candidate in (name + extra, extra + name):  # e.g. "ms-" + "Teams.exe" is itself a default name
        assert DEFAULTS.excludes(rf"C:\Users\Public\{candidate}") == (candidate.lower() in DEFAULT_NAMES)


# -- hashes, users, hosts, destinations, ports -----------------------------------------------------

SYSMON_HASHES = ("SHA1=9A3B0A1B0E2C7F4D1E6C2B8F1A0D9E8C7B6A5F4E,MD5=0CC175B9C0F1B6A831C399E269772661,"
                 "SHA256=CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB,"
                 "IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744")


def test_parse_hashes_reads_the_sysmon_format() -> None:
    h = parse_hashes(SYSMON_HASHES)
    assert h["md5"] == "0cc175b9c0f1b6a831c399e269772661"
    assert set(h) == {"sha1", "md5", "sha256", "imphash"}
    assert parse_hashes("abc123") == {"": "abc123"}
    assert parse_hashes("") == {}


@pytest.mark.parametrize("entry", [
    "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
    "CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB",
    "0cc175b9c0f1b6a831c399e269772661",
    "sha256=ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
    "IMPHASH=f34d5f2d4577ed6d9ceec516c1f5a744",
])
def test_any_listed_hash_value_excludes(entry: str) -> None:
    assert HashMatcher([entry]).excludes(SYSMON_HASHES)


def test_hash_entries_are_whole_values_and_respect_a_given_algorithm() -> None:
    assert not HashMatcher(["ca978112"]).excludes(SYSMON_HASHES)  # a prefix is not the value
    assert not HashMatcher(["MD5=f34d5f2d4577ed6d9ceec516c1f5a744"]).excludes(SYSMON_HASHES)  # that is the imphash
    assert not HashMatcher([]).excludes(SYSMON_HASHES)
    assert not HashMatcher(["abc"]).excludes(None)
    assert HashMatcher(["abc"]).excluded([SYSMON_HASHES, "SHA256=ABC", None]) == {"SHA256=ABC"}


def test_users_and_hosts_are_exact_and_case_insensitive() -> None:
    users = ExactMatcher(["CORP\\svc_backup", "root"])
    assert users.excludes("corp\\SVC_BACKUP")
    assert users.excludes("ROOT")
    assert not users.excludes("svc_backup")
    assert not users.excludes("CORP\\svc_backup2")
    hosts = ExactMatcher(["build-01.corp.example"])
    assert hosts.excluded(["BUILD-01.corp.example", "build-01", "build-011.corp.example", None]) == {
        "BUILD-01.corp.example"}


def test_destination_cidrs_unwrap_mapped_addresses_and_ignore_junk() -> None:
    m = DestinationMatcher(ExclusionConfig(destinations=("140.82.112.0/20", "2606:4700::/32")))
    assert m.excludes("140.82.113.3")
    assert m.excludes("::ffff:140.82.113.3")
    assert m.excludes("[2606:4700:4700::1111]")
    assert not m.excludes("140.82.128.1")
    assert not m.excludes("not an ip")
    assert not m.excludes(None)
    assert not DestinationMatcher(ExclusionConfig()).excludes("140.82.113.3")


def test_exclusions_bundle_works_on_distinct_values_and_joins_in_duckdb() -> None:
    cfg = ExclusionConfig(images=(r"C:\Tools\*.exe",), users=("svc",), hosts=("lab1",), ports=(80, 443),
                          destinations=("8.8.8.0/24",), hashes=("deadbeef",))
    ex = Exclusions(cfg)
    images = [r"C:\Tools\a.exe", r"C:\Tools\sub\b.exe", r"C:\Windows\System32\svchost.exe", r"C:\x\payload.exe"]
    bad = ex.excluded_images(images)
    assert bad == {r"C:\Tools\a.exe", r"C:\Windows\System32\svchost.exe"}
    assert ex.excluded_users(["SVC", "bob"]) == {"SVC"}
    assert ex.excluded_hosts(["LAB1", "lab10"]) == {"LAB1"}
    assert ex.excluded_destinations(["8.8.8.8", "8.8.4.4"]) == {"8.8.8.8"}
    assert ex.excluded_ports([80, 8080, None, 443]) == {80, 443}
    assert ex.excluded_hashes(["MD5=DEADBEEF", "MD5=DEADBEEF00"]) == {"MD5=DEADBEEF"}

    con = duckdb.connect()
    con.execute("CREATE TABLE ctx AS SELECT unnest(?) AS image", [images * 3])
    con.execute("CREATE TABLE excluded_images AS SELECT unnest(?::VARCHAR[]) AS image", [sorted(bad)])
    kept = con.execute("SELECT DISTINCT image FROM ctx WHERE image NOT IN (SELECT image FROM excluded_images) "
                       "ORDER BY image").fetchall()
    assert kept == [(r"C:\Tools\sub\b.exe",), (r"C:\x\payload.exe",)]


@pytest.mark.parametrize("kind, value", [
    ("users", r"corp\SVC_BACKUP"), ("hosts", "ws2"), ("hashes", "AAAA1111"), ("images", "agent.exe"), (None, None),
    ("all", None),
])
def test_each_exclusion_kind_removes_exactly_its_process_from_a_hunt(tmp_path, kind, value) -> None:
    """Through the engine: only the configured kind is tested, and it removes only the process it names."""
    from builders import T0, conn, guid, minutes, start, write

    from stagehunt import Config, hunt

    procs = {  # (host, image, user, hashes)
        "svc": ("WS1", r"C:\Tools\backup.exe", r"CORP\svc_backup", "SHA256=bbbb2222"),
        "ws2": ("WS2", r"C:\Tools\updater.exe", r"CORP\alice", "SHA256=cccc3333"),
        "hash": ("WS1", r"C:\Tools\sync.exe", r"CORP\alice", "MD5=DDDD,SHA256=AAAA1111"),
        "agent": ("WS1", r"C:\Program Files\Vendor\agent.exe", r"CORP\alice", "SHA256=eeee4444"),
    }
    evs = []
    for n, (host, image, user, hashes) in enumerate(procs.values()):
        g = guid()
        evs.append(start(T0, image, 100 + n, pg=g, host=host, user=user, hashes=hashes))
        evs += [conn(T0 + minutes(1 + i), image, 100 + n, f"185.220.{n}.{i + 1}", pg=g, host=host, user=user)
                for i in range(3)]
    every = {"users": [r"corp\SVC_BACKUP"], "hosts": ["ws2"], "hashes": ["AAAA1111"], "images": ["agent.exe"]}
    cfg = Config() if kind is None else Config().with_overrides(
        exclusions=every if kind == "all" else {kind: [value]})
    found = {f.image for f in hunt([write(tmp_path / "e.jsonl", evs)], cfg) if f.detection_type == "multi_stage_c2"}
    gone = {"users": {"svc"}, "hosts": {"ws2"}, "hashes": {"hash"}, "images": {"agent"},
            "all": set(procs)}.get(kind, set())
    assert found == {image for name, (_, image, _, _) in procs.items() if name not in gone}
