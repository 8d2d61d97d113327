import pytest

from tests import factories as f


@pytest.fixture
def anna(alpha):
    """A patient of Alpha with consent, and her clinic thread."""
    return f.PatientFactory(full_name="Anna Petrova", phone="+79160000001")


@pytest.fixture
def anna_thread(alpha, anna):
    return f.ThreadFactory(clinic=alpha.clinic, patient=anna)


@pytest.fixture
def boris_thread(beta):
    """A patient of Beta and his thread: what Alpha's people must never reach."""
    return f.ThreadFactory(clinic=beta.clinic, patient=f.PatientFactory(full_name="Boris Betov", phone="+79160000002"))
