"""The one unit system of pkpd, as constants.

Inside the core: time in hours (h), amounts in mg, volumes in L,
clearances in L/h, concentrations in mg/L.  Receptor quantities are
dimensionless.  Conversions happen only at the edges (plots, labels).
"""

from __future__ import annotations

#: Molar mass of baclofen, g/mol (Lioresal prescribing information).
BACLOFEN_MOLAR_MASS_G_PER_MOL = 213.66

#: Micromolar per mg/L of baclofen: 1000 / 213.66 (1 mg/L = 4.680 µM).
UM_PER_MG_PER_L = 1000.0 / BACLOFEN_MOLAR_MASS_G_PER_MOL

HOURS_PER_DAY = 24.0
NG_PER_ML_PER_MG_PER_L = 1000.0
UG_PER_MG = 1000.0

#: Times closer than this (h) are one time: coincident doses add, an output
#: within it of a dose reports the dose (the one coincidence rule).
TIME_TOLERANCE_H = 1e-9
