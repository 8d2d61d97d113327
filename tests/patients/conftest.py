import pytest

from tests import factories as f


@pytest.fixture
def consent_text(alpha):
    """Alpha's published consent text, version 1."""
    return f.ConsentDocumentFactory(clinic=alpha.clinic, version=1)
