"""Task 6, Integration Point Validation: foreign keys, cascades and the end-to-end flow (issue 3).

No check yet: until they land, this task is NOT RUN and the verdict NOT APPROVED.
"""

import pytest

pytestmark = pytest.mark.readiness
