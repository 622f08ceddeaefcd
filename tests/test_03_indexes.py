"""Task 3, Index Performance Validation: the 15 indexes, proven on realistic volume (issue 4).

No check yet: until they land, this task is NOT RUN and the verdict NOT APPROVED.
"""

import pytest

pytestmark = pytest.mark.readiness
