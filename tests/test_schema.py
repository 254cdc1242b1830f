"""The forecast schema: what the producer writes round-trips through netCDF and validates; a Dataset
missing a dim or attr is rejected with a named error."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pinned import pinned_fit, qe_prone_point

from regimecast import schema
from regimecast.errors import DataError, SchemaError
from regimecast.forecast import forecast


@pytest.fixture(scope="module")
def fc() -> xr.Dataset:
    return forecast(pinned_fit(qe_prone_point()), horizon=6, max_draws=5, paths_per_draw=2,
                    random_seed=1)


def test_producer_output_round_trips_through_netcdf(fc, tmp_path):
    path = tmp_path / "forecast.nc"
    fc.to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        back = back.load()
    schema.validate_forecast(back)
    assert schema.chains(back) == ["macro", "rate", "bs"]
    assert schema.chain_labels(back) == schema.chain_labels(fc)
    assert schema.chain_labels(back)["rate"] == ["cutting", "hold", "hiking"]
    assert schema.chain_labels(back)["bs"] == ["QT", "steady", "QE"]
    for chain in schema.chains(back):
        np.testing.assert_array_equal(back[schema.state_variable(chain)], fc[schema.state_variable(chain)])


@pytest.mark.parametrize(
    ("breakage", "match"),
    [
        (lambda ds: ds.isel(sample=0), "'sample'"),
        (lambda ds: ds.isel(horizon=0), "'horizon'"),
        (lambda ds: ds.drop_vars("date"), "'date'"),
        (lambda ds: ds.assign_coords(horizon=ds.horizon + 1), "horizon coordinate"),
        (lambda ds: ds.drop_attrs(deep=False).assign_attrs(
            {k: v for k, v in ds.attrs.items() if k != "as_of"}), "'as_of'"),
        (lambda ds: ds.assign_attrs(chains=["macro", "rate", "bs", "fiscal"]), "'fiscal'"),
        (lambda ds: ds.drop_vars("bs_state"), "'bs_state'"),
        (lambda ds: ds.assign_attrs(rate_labels=["cutting"]), "outside 0..0"),
    ],
)
def test_malformed_forecast_is_rejected_with_a_named_error(fc, breakage, match):
    with pytest.raises(SchemaError, match=match):
        schema.validate_forecast(breakage(fc))
    assert issubclass(SchemaError, DataError)


def test_no_chains_declared_is_rejected(fc):
    attrs = {k: v for k, v in fc.attrs.items() if k != "chains" and not k.endswith("_labels")}
    with pytest.raises(SchemaError, match="declares no chains"):
        schema.validate_forecast(fc.drop_attrs(deep=False).assign_attrs(attrs))


def test_older_forecast_without_chains_attr_declares_chains_by_labels(fc):
    old = fc.drop_attrs(deep=False).assign_attrs({k: v for k, v in fc.attrs.items() if k != "chains"})
    assert schema.chains(old) == ["macro", "rate", "bs"]
    schema.validate_forecast(old)
