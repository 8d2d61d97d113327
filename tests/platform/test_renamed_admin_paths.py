"""Admin paths from before the models were renamed (to Visit and Contact) still lead to the page."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/admin/appointments/appointment/", "/admin/appointments/visit/"),  # rename: keep
        ("/admin/appointments/appointment/7/change/?x=1", "/admin/appointments/visit/7/change/?x=1"),  # rename: keep
        ("/admin/patients/patientinclinic/", "/admin/patients/contact/"),  # rename: keep
    ],
)
def test_an_old_admin_path_redirects_to_the_renamed_page(client, old, new):
    response = client.get(old)
    assert response.status_code == 301
    assert response["Location"] == new
