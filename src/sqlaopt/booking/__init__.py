"""The reference booking domain: schema, sample data and the report's query patterns.

* :mod:`sqlaopt.booking.naive` and :mod:`sqlaopt.booking.optimized`: each report flow written
  the way the report describes the current code, and optimized; same names, same arguments,
  equal results. :data:`FLOWS` lists them for the demo and the benchmarks.
* :func:`book_appointment`: booking that is safe under concurrency.
* :func:`generate`: a realistic data set of any size, fast.
"""

from . import naive, optimized
from ._booking import (
    ADVISORY_LOCK_NAMESPACE,
    BARBER_ROLE,
    DURATION_MINUTES,
    EXCLUSION_CONSTRAINT,
    BookingConflict,
    BookingError,
    BookingInputError,
    BookingNotFoundError,
    BookingSetupError,
    NotABarberError,
    book_appointment,
)
from ._generate import Generated, GenerateError, generate
from ._results import (
    DashboardMetrics,
    Membership,
    PaymentLine,
    RevenueBucket,
    ScheduleEntry,
    Slot,
    UpcomingAppointment,
    UserDashboard,
)
from .flows import FLOWS, Flow, flow_arguments
from .sample import SampleSize, build_sample

__all__ = [
    "ADVISORY_LOCK_NAMESPACE",
    "BARBER_ROLE",
    "DURATION_MINUTES",
    "EXCLUSION_CONSTRAINT",
    "FLOWS",
    "BookingConflict",
    "BookingError",
    "BookingInputError",
    "BookingNotFoundError",
    "BookingSetupError",
    "DashboardMetrics",
    "Flow",
    "GenerateError",
    "Generated",
    "Membership",
    "NotABarberError",
    "PaymentLine",
    "RevenueBucket",
    "SampleSize",
    "ScheduleEntry",
    "Slot",
    "UpcomingAppointment",
    "UserDashboard",
    "book_appointment",
    "build_sample",
    "flow_arguments",
    "generate",
    "naive",
    "optimized",
]
