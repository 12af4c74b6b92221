"""Checks the Ivoris sandbox with plain HTTP against reference/ivoris.md.

No SDK exists for Ivoris, so this speaks the documented wire contract
directly: Basic auth plus app/app_version/api_key query keys, bare JSON
arrays, zero-based pages until an empty array, PascalCase fields,
date-times without offset. Usage: ivoris_http.py CONFIG.toml PASSWORD API_KEY
"""

import base64
import json
import re
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request

CHECKS = []
LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def check(name):
    def wrap(fn):
        CHECKS.append((name, fn))
        return fn

    return wrap


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


class Installation:
    def __init__(self, location, password, api_key):
        self.base = location["ivoris_url"].rstrip("/")
        self.user = location["ivoris_user"]
        self.password = password
        self.keys = {"app": location["ivoris_app"], "app_version": location["ivoris_app_version"], "api_key": api_key}

    def get(self, route, auth=True, keys=True, **params):
        query = dict(self.keys if keys else {}, **params)
        url = f"{self.base}{route}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url)
        if auth:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, None


def all_patients(inst):
    patients, page = [], 0
    while True:
        status, body = inst.get("/Patient/v1/AllPatients", page=page)
        expect(status == 200, f"page {page}: status {status}")
        expect(isinstance(body, list), f"page {page} is not a bare array")
        if not body:
            return patients, page
        patients.extend(body)
        page += 1


@check("ping and version answer with Basic auth and query keys")
def ping(inst, state):
    status, _ = inst.get("/About/v1/Ping")
    expect(status == 200, f"ping: {status}")
    status, version = inst.get("/About/v1/IvorisVersion")
    expect(status == 200 and version, f"version: {status} {version}")


@check("missing Basic auth or missing api_key is refused with 401")
def auth(inst, state):
    status, _ = inst.get("/About/v1/Ping", auth=False)
    expect(status == 401, f"without Basic auth: {status}")
    status, _ = inst.get("/About/v1/Ping", keys=False)
    expect(status == 401, f"without query keys: {status}")


@check("AllPatients pages from 0 until an empty array, each patient once")
def patients(inst, state):
    listed, pages = all_patients(inst)
    ids = [p["Id"] for p in listed]
    expect(len(ids) == len(set(ids)), "a patient appeared twice without faults")
    expect(pages >= 1 and listed, "no patients")
    for p in listed:
        expect(LOCAL_DATETIME.match(p.get("Birthday") or "2000-01-01T00:00:00"), f"Birthday format {p.get('Birthday')}")
        expect("Firstname" in p and "Lastname" in p, "PascalCase patient fields missing")
    state["patients"] = listed


@check("Patient?id= returns the listed record")
def one_patient(inst, state):
    first = state["patients"][0]
    status, body = inst.get("/Patient/v1/Patient", id=first["Id"])
    expect(status == 200 and body["Id"] == first["Id"], f"single patient: {status}")


@check("AllAppointments by date window keeps every start inside the window")
def appointments(inst, state):
    status, profiles = inst.get("/Profile/v1/Profiles")
    expect(status == 200 and isinstance(profiles, list) and profiles, "profiles missing")
    profile = profiles[0]["Id"]
    status, body = inst.get("/Appointment/v1/AllAppointments", profileId=profile, begin="2026-01-01", end="2026-01-31")
    expect(status == 200 and isinstance(body, list), f"appointments: {status}")
    for a in body:
        expect(LOCAL_DATETIME.match(a["Start"]), f"Start format {a['Start']}")
        expect("2026-01-01" <= a["Start"][:10] <= "2026-01-31", f"start {a['Start']} outside the window")
    state["profile"] = profile
    state["appointments"] = body


@check("DocumentEntries per patient: own patient only, amounts are numbers")
def entries(inst, state):
    with_entries = 0
    for patient in state["patients"][:30]:
        status, body = inst.get(
            "/Documentation/v1/DocumentEntries", patientId=patient["Id"], profileId=state["profile"]
        )
        expect(status == 200 and isinstance(body, list), f"entries: {status}")
        for e in body:
            expect(e["PatientId"] == patient["Id"], "entry of another patient")
            expect(isinstance(e.get("Amount"), (int, float)), "Amount is not a number")
        with_entries += bool(body)
    expect(with_entries > 0, "no patient among the first 30 has document entries")


@check("unparseable date parameter is a 400, not a crash")
def bad_params(inst, state):
    status, _ = inst.get("/Appointment/v1/AllAppointments", profileId=state["profile"], begin="31.01.2026", end="x")
    expect(status == 400, f"bad dates: {status}")


def main():
    config = tomllib.load(open(sys.argv[1], "rb"))
    password, api_key = sys.argv[2], sys.argv[3]
    passed = failed = 0
    for location in config["location"]:
        inst = Installation(location, password, api_key)
        state = {}
        for name, fn in CHECKS:
            try:
                fn(inst, state)
            except Exception as error:  # noqa: BLE001 - report the check, stop this location
                failed += 1
                print(f"FAIL [{location['key']}] {name}: {type(error).__name__}: {error}")
                break
            passed += 1
            print(f"ok   [{location['key']}] {name}")
    print(f"ivoris-http: {passed} passed, {failed} failed")
    sys.exit(1 if failed or passed != len(CHECKS) * len(config["location"]) else 0)


if __name__ == "__main__":
    main()
