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
SMALLCAP_VOLUME_IWM = "smallcap_volume_iwm"
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
        "shares per day (Russell 2000 constituents)",
        "Russell 2000 (^RUT) constituent share volume: mean over the month's valid trading days "
        "(zero-volume days missing; fewer than 10 valid days or a partial month: missing)",
    ),
    SMALLCAP_VOLUME_PROXY: ColumnMeta(
        "0/1",
        "1 where smallcap_volume comes from a proxy source; always 0 in the built-in panel "
        "(^RUT from its first month, no splice)",
    ),
    SMALLCAP_VOLUME_LOG: ColumnMeta(
        "log shares per day (Russell 2000 constituents)", "natural log of smallcap_volume"
    ),
    SMALLCAP_VOLUME_IWM: ColumnMeta(
        "shares per day (IWM ETF)",
        "cross-check, not modelled: IWM (iShares Russell 2000 ETF) share volume, mean over the "
        "month's valid trading days (same rules as smallcap_volume)",
    ),
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
    SMALLCAP_VOLUME_IWM,
    RECESSION,
)

#: What ``smallcap_volume`` measures.  Runs record it (manifest ``volume_series``) and
#: :func:`regimecast.runs.load_run` refuses a run made with another series: change it whenever the
#: meaning of the volume columns changes.  Runs made before it existed used IWM share volume spliced
#: with rescaled ^RUT volume before 2005.
VOLUME_SERIES = "^RUT constituent share volume, monthly mean of valid days"

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
