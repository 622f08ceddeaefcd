"""Task 4, Trigger Function Validation: the 5 functions and 4 triggers (issue 3).

No check yet: until they land, this task is NOT RUN and the verdict NOT APPROVED.
"""

import pytest

pytestmark = pytest.mark.readiness
