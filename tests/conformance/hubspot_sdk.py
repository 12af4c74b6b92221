"""Drives the HubSpot sandbox through HubSpot's official Python SDK.

The SDK (hubspot-api-client) is generated from HubSpot's published OpenAPI
schemas: every request it builds and every response it parses follows them.
If the sandbox answers in a shape HubSpot would not, the SDK's models refuse
it and this script fails. Usage: hubspot_sdk.py BASE_URL TOKEN
"""

import sys
import time
import uuid

from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicDefaultAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.deals import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicMergeInput,
    SimplePublicObjectBatchInputForCreate,
)
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

CHECKS = []


def check(name):
    def wrap(fn):
        CHECKS.append((name, fn))
        return fn

    return wrap


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def refused(call):
    """Runs an SDK call that must fail; returns (status, body) of the refusal.

    Every SDK package has its own ApiException class, so match on the shape.
    """
    try:
        call()
    except Exception as error:  # noqa: BLE001 - see docstring
        if hasattr(error, "status") and hasattr(error, "body"):
            return error.status, error.body or ""
        raise
    raise AssertionError("the call succeeded but must be refused")


RUN = uuid.uuid4().hex[:8]
KEY = "ivoris_patient_key"
PATIENTS = [f"conf-{RUN}:{n}" for n in range(150)]


def upsert_contacts(client):
    ids = {}
    new_flags = []
    for start in range(0, len(PATIENTS), 100):
        chunk = PATIENTS[start : start + 100]
        batch = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id_property=KEY,
                    id=key,
                    properties={KEY: key, "firstname": "Jürgen", "lastname": f"Weiß {key}"},
                )
                for key in chunk
            ]
        )
        response = client.crm.contacts.batch_api.upsert(batch)
        expect(response.status == "COMPLETE", f"upsert status {response.status}")
        for result in response.results:
            ids[result.properties[KEY]] = result.id
            new_flags.append(result.new)
    return ids, new_flags


@check("create the unique key property (and its group)")
def create_property(client, state):
    client.crm.properties.groups_api.create(
        object_type="contacts",
        property_group_create=PropertyGroupCreate(name=f"ivoris_{RUN}", label="Ivoris"),
    )
    prop = client.crm.properties.core_api.create(
        object_type="contacts",
        property_create=PropertyCreate(
            name=KEY,
            label="Ivoris Patientenschlüssel",
            type="string",
            field_type="text",
            group_name=f"ivoris_{RUN}",
            has_unique_value=True,
        ),
    )
    expect(prop.name == KEY and prop.has_unique_value, "unique property not created")
    status, _ = refused(
        lambda: client.crm.properties.core_api.create(
            object_type="contacts",
            property_create=PropertyCreate(
                name=KEY, label="again", type="string", field_type="text", group_name=f"ivoris_{RUN}"
            ),
        )
    )
    expect(status == 409, f"existing property gave {status}, expected 409")


@check("batch upsert twice: same ids, new == false the second time")
def upsert_twice(client, state):
    first, first_new = upsert_contacts(client)
    second, second_new = upsert_contacts(client)
    expect(len(first) == len(PATIENTS), f"{len(first)} results for {len(PATIENTS)} inputs")
    expect(all(first_new), "first upsert must create every record")
    expect(not any(second_new), "second upsert must create nothing")
    expect(first == second, "second upsert must land on the same ids")
    state["contact_ids"] = first


@check("batch read by idProperty")
def batch_read(client, state):
    wanted = PATIENTS[:10]
    response = client.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            id_property=KEY,
            inputs=[SimplePublicObjectId(id=key) for key in wanted],
            properties=[KEY, "lastname"],
            properties_with_history=[],
        )
    )
    got = {r.properties[KEY]: r.id for r in response.results}
    expect(set(got) == set(wanted), "batch read by idProperty returned other records")
    expect(all(got[k] == state["contact_ids"][k] for k in wanted), "ids differ from the upsert")


@check("list with paging visits every record once")
def list_paging(client, state):
    seen = []
    after = None
    pages = 0
    while True:
        page = client.crm.contacts.basic_api.get_page(limit=40, after=after, properties=[KEY])
        pages += 1
        seen.extend(r.id for r in page.results)
        if page.paging is None or page.paging.next is None:
            break
        after = page.paging.next.after
    expect(len(seen) == len(set(seen)), "a record appeared on two pages")
    expect(set(state["contact_ids"].values()) <= set(seen), "paging missed records")
    expect(pages >= 4, f"{pages} pages for {len(seen)} records at limit 40")


@check("search finds a new record only after the index lag")
def search(client, state):
    key = f"conf-{RUN}:late"
    batch = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[SimplePublicObjectBatchInputUpsert(id_property=KEY, id=key, properties={"lastname": "Müller"})]
    )
    written = client.crm.contacts.batch_api.upsert(batch).results[0].id
    request = PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name=KEY, operator="EQ", value=key)])],
        properties=[KEY],
        limit=10,
    )
    first = client.crm.contacts.search_api.do_search(public_object_search_request=request)
    expect(first.total == 0, "a write was searchable at once; HubSpot's index lags")
    deadline = time.monotonic() + 15
    while True:
        time.sleep(0.3)
        result = client.crm.contacts.search_api.do_search(public_object_search_request=request)
        if result.total == 1:
            break
        expect(time.monotonic() < deadline, "record never became searchable")
    expect(result.results[0].id == written, "search found another record")


@check("read pipelines: default and Patientenreise with their stages")
def pipelines(client, state):
    response = client.crm.pipelines.pipelines_api.get_all(object_type="deals")
    by_label = {p.label: p for p in response.results}
    expect(any(p.id == "default" for p in response.results), "default pipeline missing")
    journey = by_label.get("Patientenreise")
    expect(journey is not None, "Patientenreise pipeline missing")
    labels = [s.label for s in sorted(journey.stages, key=lambda s: s.display_order)]
    for label in ["Termin gebucht", "Erstberatung", "In Behandlung", "Behandlung abgeschlossen", "Verloren"]:
        expect(label in labels, f"stage {label} missing")
    state["pipeline"] = journey


@check("batch-associate deals to contacts and read the associations back")
def associate(client, state):
    created = client.crm.deals.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                SimplePublicObjectBatchInputForCreate(properties={"dealname": f"Konformität {RUN} {n}"}, associations=[])
                for n in range(3)
            ]
        )
    )
    deal_ids = [r.id for r in created.results]
    expect(len(deal_ids) == 3, "batch create returned fewer deals")
    contacts = [state["contact_ids"][PATIENTS[n]] for n in range(3)]
    client.crm.associations.v4.batch_api.create_default(
        from_object_type="deals",
        to_object_type="contacts",
        batch_input_public_default_association_multi_post=BatchInputPublicDefaultAssociationMultiPost(
            inputs=[
                PublicDefaultAssociationMultiPost(_from={"id": d}, to={"id": c}) for d, c in zip(deal_ids, contacts)
            ]
        ),
    )
    read = client.crm.associations.v4.batch_api.get_page(
        from_object_type="deals",
        to_object_type="contacts",
        batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=d) for d in deal_ids]
        ),
    )
    linked = {r._from.id: [t.to_object_id for t in r.to] for r in read.results}
    for deal, contact in zip(deal_ids, contacts):
        expect([str(x) for x in linked.get(deal, [])] == [contact], f"deal {deal} not associated to {contact}")
    state["deal_ids"] = deal_ids


@check("merge two deals")
def merge(client, state):
    primary, other = state["deal_ids"][0], state["deal_ids"][1]
    merged = client.crm.deals.basic_api.merge(
        public_merge_input=PublicMergeInput(primary_object_id=primary, object_id_to_merge=other)
    )
    expect(merged.id in (primary, other), "merge returned an unrelated record")
    page_ids = []
    after = None
    while True:
        page = client.crm.deals.basic_api.get_page(limit=100, after=after)
        page_ids.extend(r.id for r in page.results)
        if page.paging is None or page.paging.next is None:
            break
        after = page.paging.next.after
    survivors = [d for d in (primary, other) if d in page_ids]
    expect(survivors == [merged.id], f"after merge the deals listed are {survivors}")


@check("exceeding the 10-second budget gives 429 with policyName")
def rate_limit(client, state):
    for _ in range(400):
        try:
            client.crm.deals.basic_api.get_page(limit=1)
        except Exception as error:  # noqa: BLE001 - each SDK package has its own ApiException
            expect(getattr(error, "status", None) == 429, f"expected 429, got {error}")
            body = (error.body or "").replace(" ", "")
            expect('"policyName":"TEN_SECONDLY_ROLLING"' in body, f"429 body: {error.body}")
            return
    raise AssertionError("400 requests within seconds never hit the rate limit")


def main():
    base_url, token = sys.argv[1], sys.argv[2]
    client = HubSpot(access_token=token, host=base_url)
    state = {}
    passed = failed = 0
    for name, fn in CHECKS:
        try:
            fn(client, state)
        except Exception as error:  # noqa: BLE001 - report the check, stop: later checks build on it
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}")
            break
        passed += 1
        print(f"ok   {name}")
    print(f"hubspot-sdk: {passed} passed, {failed} failed")
    sys.exit(1 if failed or passed != len(CHECKS) else 0)


if __name__ == "__main__":
    main()
