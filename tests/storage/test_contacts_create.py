"""``storage.contacts._create``, the new-contact fast path, against the merge it replaces."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from capi_stream.event import SOURCE_ID_FIELDS
from storage.contacts import _COLUMNS, ContactFacts, _create, _Index, _merge, _Person

TENANT = uuid.uuid4()
_text = st.none() | st.text(min_size=0, max_size=3)
_click = st.none() | st.tuples(
    st.text(max_size=3), st.datetimes(timezones=st.just(UTC), min_value=datetime(2020, 1, 1))
)


@st.composite
def _facts(draw: st.DrawFn) -> ContactFacts:
    click = draw(_click)  # extract_facts: fbclid, fbc and seen_at are all set or all None
    fbclid, fbc, seen_at = (None, None, None) if click is None else (click[0], "fb", click[1])
    return ContactFacts(
        TENANT,
        "e1",
        draw(st.none() | st.just(uuid.uuid4())),
        draw(st.dictionaries(st.sampled_from(SOURCE_ID_FIELDS), st.text(max_size=3))),
        draw(_text),
        draw(_text),
        fbclid,
        fbc,
        seen_at,
        draw(_text),
        draw(_text),
        draw(_text),
    )


@given(_facts())
def test_a_new_contact_is_what_merging_into_an_empty_one_makes(facts: ContactFacts) -> None:
    contact_id = uuid.uuid4()
    created, merged = _Index([]), _Index([])
    assert created.find(facts) is None
    person = _create(created, contact_id, facts)
    empty = _Person(contact_id, TENANT)
    merged.by_id[contact_id.int] = empty
    _merge(merged, empty, facts)

    assert [getattr(person, name) for name in _COLUMNS] == [
        getattr(empty, name) for name in _COLUMNS
    ]
    assert person._changed is None and person.snapshot() == empty.snapshot()
    assert created.by_id == {contact_id.int: person}
    assert created._first.keys() == merged._first.keys()
    assert created.find(facts) is person or not facts.links
