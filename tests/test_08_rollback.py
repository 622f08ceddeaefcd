"""Task 8, Rollback Procedure: a rollback that leaves no trace (issue 4).

No check yet: until they land, this task is NOT RUN and the verdict NOT APPROVED.
"""

import pytest

pytestmark = pytest.mark.readiness
