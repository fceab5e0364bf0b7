"""Test utilities, as Backstage's backend-test-utils.

from backstage_core.testing import mock_credentials, mock_services, start_test_backend
"""

from backstage_core.testing.backend import TestBackend, start_test_backend
from backstage_core.testing.credentials import mock_credentials
from backstage_core.testing.services import mock_services

__all__ = ["TestBackend", "mock_credentials", "mock_services", "start_test_backend"]
