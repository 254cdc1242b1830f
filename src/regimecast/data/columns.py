"""Column names of the monthly panel, named once, with their units and descriptions.

Every other module refers to these constants, never to the bare strings.
"""

from __future__ import annotations

from typing import NamedTuple

DATE = "date"

CPI_YOY = "cpi_yoy"
CPI_MOM_ANN = "cpi_mom_ann"
CORE_CPI_YOY = "core_cpi_yoy"
POLICY_RATE = "policy_rate"
POLICY_RATE_CHANGE = "policy_rate_change"
BILL_RATE = "bill_rate"
GS10 = "gs10"
BALANCE_SHEET = "balance_sheet"
BALANCE_SHEET_PROXY = "balance_sheet_proxy"
BALANCE_SHEET_GROWTH = "balance_sheet_growth"
SMALLCAP_VOLUME = "smallcap_volume"
SMALLCAP_VOLUME_PROXY = "smallcap_volume_proxy"
SMALLCAP_VOLUME_LOG = "smallcap_volume_log"
RECESSION = "recession"


class ColumnMeta(NamedTuple):
    """Units and a one-line description of a panel column."""

    units: str
    description: str


COLUMN_META: dict[str, ColumnMeta] = {
    CPI_YOY: ColumnMeta(
        "percent", "headline CPI (CPIAUCSL) year-on-year change, 100*(CPI_t/CPI_{t-12}-1)"
    ),
    CPI_MOM_ANN: ColumnMeta(
        "percent, annualised", "headline CPI month-on-month change, 1200*ln(CPI_t/CPI_{t-1})"
    ),
    CORE_CPI_YOY: ColumnMeta(
        "percent", "core CPI (CPILFESL) year-on-year change, 100*(CPI_t/CPI_{t-12}-1)"
    ),
    POLICY_RATE: ColumnMeta("percent", "effective federal funds rate, monthly average (FEDFUNDS)"),
    POLICY_RATE_CHANGE: ColumnMeta(
        "percentage points",
        "month-on-month change of the policy rate (FEDFUNDS_t - FEDFUNDS_{t-1})",
    ),
    BILL_RATE: ColumnMeta("percent", "3-month Treasury bill, secondary market (TB3MS)"),
    GS10: ColumnMeta("percent", "10-year Treasury constant-maturity yield, monthly average (GS10)"),
    BALANCE_SHEET: ColumnMeta(
        "billions of USD",
        "Fed total assets, month average of weekly WALCL/1000; monetary base (BOGMBASE) before WALCL starts",
    ),
    BALANCE_SHEET_PROXY: ColumnMeta(
        "0/1", "1 where balance_sheet comes from the BOGMBASE proxy, 0 where from WALCL"
    ),
    BALANCE_SHEET_GROWTH: ColumnMeta(
        "percent",
        "100*log change of balance_sheet month on month, within one source (NaN at the splice)",
    ),
    SMALLCAP_VOLUME: ColumnMeta(
        "shares per day",
        "IWM average daily share volume in the month; before the splice, Russell 2000 (^RUT) index volume rescaled to IWM's level",
    ),
    SMALLCAP_VOLUME_PROXY: ColumnMeta(
        "0/1", "1 for months before the volume splice (value, if any, from rescaled ^RUT volume)"
    ),
    SMALLCAP_VOLUME_LOG: ColumnMeta("log shares per day", "natural log of smallcap_volume"),
    RECESSION: ColumnMeta("0/1", "NBER recession indicator (USREC)"),
}

#: The panel's columns, in order.
PANEL_COLUMNS: tuple[str, ...] = (
    CPI_YOY,
    CPI_MOM_ANN,
    CORE_CPI_YOY,
    POLICY_RATE,
    POLICY_RATE_CHANGE,
    BILL_RATE,
    GS10,
    BALANCE_SHEET,
    BALANCE_SHEET_PROXY,
    BALANCE_SHEET_GROWTH,
    SMALLCAP_VOLUME,
    SMALLCAP_VOLUME_PROXY,
    SMALLCAP_VOLUME_LOG,
    RECESSION,
)

#: 0/1 columns that are always defined (integers, never missing).
FLAG_COLUMNS: tuple[str, ...] = (BALANCE_SHEET_PROXY, SMALLCAP_VOLUME_PROXY)

#: The macro columns the regime model needs in every month (volume starts later, in 1987).
MACRO_COLUMNS: tuple[str, ...] = (
    CPI_YOY,
    CPI_MOM_ANN,
    CORE_CPI_YOY,
    POLICY_RATE,
    POLICY_RATE_CHANGE,
    BILL_RATE,
    GS10,
    BALANCE_SHEET,
    RECESSION,
)
