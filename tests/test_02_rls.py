"""Task 2, RLS Policy Validation: catalog and behaviour of the 12 policies (issue 3).

No check yet: until they land, this task is NOT RUN and the verdict NOT APPROVED.
"""

import pytest

pytestmark = pytest.mark.readiness
