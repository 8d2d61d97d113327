"""Fifty patients tap the same slot at once: the database lets exactly one visit in.

Real threads, each with its own database connection (on PostgreSQL taken from the
process's pool while a request runs, as under daphne), committing for real
(PostgreSQL's exclusion constraint in CI; SQLite's IMMEDIATE transactions in the
embedded default).
"""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from appointments.models import Visit
from tests import factories as f
from tests.conftest import at

CONTENDERS = 50


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_bookings_of_one_slot_make_one_visit(alpha, checkup, day):
    patients = []
    for n in range(CONTENDERS):
        patient = f.PatientFactory(phone=f"+7916777{n:04d}")
        f.ThreadFactory(clinic=alpha.clinic, patient=patient)
        patients.append(patient)
    start = at(alpha.clinic, day, 10)
    payload = {"doctor": alpha.doctor.pk, "service": checkup.pk, "starts_at": start.isoformat()}
    barrier = threading.Barrier(CONTENDERS)
    answers: list[tuple[int, dict]] = []

    def book(patient):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(patient.user)
        connection.close()  # back to the pool: fifty threads wait at the barrier, the pool has fewer connections
        barrier.wait()
        try:
            response = client.post("/api/visits/", payload, format="json")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=book, args=(p,)) for p in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(answers) == CONTENDERS
    codes = sorted(code for code, _ in answers)
    assert codes == [201] + [409] * (CONTENDERS - 1), codes
    assert Visit.objects.filter(doctor=alpha.doctor).count() == 1
    for code, body in answers:
        if code == 409:
            assert body["code"] == "slot_taken"
            assert body["detail"].startswith("This time has just been taken.")
            assert len(body["alternatives"]) == 3
            assert start.isoformat() not in [a["starts_at"] for a in body["alternatives"]]
