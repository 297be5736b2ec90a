"""fastkm's validation fast paths against scikit-learn's own validation.

Plain float arrays skip scikit-learn's ``validate_data``/``check_array`` (whose
dataframe and array-API checks cost more than a small fit's iterations). These
tests hold the fast paths to exactly what scikit-learn's code gives.
"""

import numbers
import warnings
from unittest import mock

import numpy as np
import pytest
import sklearn
import sklearn.cluster as skc
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from fastkm import KMeans, MiniBatchKMeans
from fastkm import _validation as v

from .helpers import error_of

RNG = np.random.default_rng(0)
BASE = RNG.normal(size=(40, 5))


def _arrays():
    read_only = BASE.copy()
    read_only.flags.writeable = False
    return {
        "C float64": BASE.copy(),
        "F float64": np.asfortranarray(BASE),
        "C float32": BASE.astype(np.float32),
        "strided": BASE[::2, ::2],
        "read-only": read_only,
        "one row": BASE[:1].copy(),
        "big-endian": BASE.astype(">f8"),
        "int": (BASE * 10).astype(np.int64),
        "list": BASE.tolist(),
    }


@pytest.mark.parametrize("name", list(_arrays()))
@pytest.mark.parametrize("copy", [True, False])
def test_fit_validation_matches_sklearn(name, copy):
    X = _arrays()[name]
    ours_est, theirs_est = KMeans(), skc.KMeans()
    ours, owned, sums = v.validate_fit_data(ours_est, X, copy=copy)
    theirs = validate_data(theirs_est, X, dtype=v.FLOAT_DTYPES, order="C", copy=copy)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype
    assert ours.flags.c_contiguous
    assert ours_est.n_features_in_ == theirs_est.n_features_in_
    np.testing.assert_array_equal(sums, theirs.sum(axis=0))
    # Not owned only when the caller asked for a copy that was left to fit.
    if isinstance(X, np.ndarray) and np.may_share_memory(ours, X):
        assert owned == (not copy)
    else:
        assert owned


def test_refit_without_feature_names_drops_them():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(BASE, columns=list("abcde"))
    ours, theirs = KMeans(3, random_state=0).fit(df), skc.KMeans(3, random_state=0).fit(df)
    ours.fit(BASE)
    theirs.fit(BASE)
    assert hasattr(ours, "feature_names_in_") == hasattr(theirs, "feature_names_in_") is False


def test_predict_with_names_mismatch_warns_or_raises_as_sklearn():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(BASE, columns=list("abcde"))
    ours, theirs = KMeans(3, random_state=0).fit(df), skc.KMeans(3, random_state=0).fit(df)
    # Fitted with names, predicting on an array: the same warning.
    for est in (ours, theirs):
        with pytest.warns(UserWarning, match="does not have valid feature names"):
            est.predict(BASE)
    # Fitted without names, predicting on a frame: the same warning.
    ours, theirs = KMeans(3, random_state=0).fit(BASE), skc.KMeans(3, random_state=0).fit(BASE)
    for est in (ours, theirs):
        with pytest.warns(UserWarning, match="X has feature names"):
            est.predict(df)
    # Wrong width: the same error.
    for est in (ours, theirs):
        with pytest.raises(ValueError, match="X has 4 features, but KMeans is expecting 5"):
            est.predict(BASE[:, :4])


@pytest.mark.parametrize(
    "init",
    [
        BASE[:3].copy(),
        BASE[:3].astype(np.float16),
        np.asfortranarray(BASE[:3]),
        BASE[:3].tolist(),
    ],
    ids=["float64", "float16", "F order", "list"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_init_array_validation_matches_check_array(init, dtype):
    X = BASE.astype(dtype)
    ours = v.check_init_array(init, X, 3)
    theirs = check_array(init, dtype=dtype, copy=True, order="C")
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype and ours.flags.c_contiguous
    assert not np.may_share_memory(ours, init)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e300])
def test_non_finite_init_gets_sklearns_error(bad):
    # 1e300 only overflows once converted to float32, as check_array converts.
    X = BASE.astype(np.float32)
    init = BASE[:3].copy()
    init[1, 2] = bad

    def error(cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cls(3, init=init, n_init=1).fit(X)
            except ValueError as exc:
                return str(exc)
        return None

    assert error(skc.KMeans) is not None
    assert error(KMeans) == error(skc.KMeans)


def test_default_sample_weight():
    X = BASE.astype(np.float32)
    w = v.check_sample_weight(None, X)
    assert w.dtype == np.float32 and w.shape == (40,) and np.all(w == 1)


def test_parameter_validation_remembers_only_passing_sets():
    """A set that passed is not re-checked; a bad value still fails, every time."""
    X = BASE.copy()
    model = KMeans(3, n_init=1, random_state=0).fit(X)
    for bad in (-1, 0, 2.5, "3"):
        model.set_params(n_clusters=bad)
        for _ in range(2):
            ours = error_of(model.fit, X)
            theirs = error_of(skc.KMeans(bad, n_init=1, random_state=0).fit, X)
            assert ours[0] is not None and ours == theirs
    model.set_params(n_clusters=3, tol=-1.0)
    assert error_of(model.fit, X)[0] is not None
    model.set_params(tol=1e-4, init=np.asarray(X[:3]))
    model.fit(X)  # an array init: keyed by type, any array passes validation
    model.set_params(init=X[3:6].tolist())
    model.fit(X)


def test_parameter_key():
    key = v.parameter_key(KMeans, {"n_clusters": 3, "init": np.zeros((3, 2)), "tol": 1e-4})
    assert key == v.parameter_key(KMeans, {"tol": 1e-4, "init": np.ones((3, 2)), "n_clusters": 3})
    assert key != v.parameter_key(KMeans, {"n_clusters": 3, "init": "random", "tol": 1e-4})
    assert key != v.parameter_key(KMeans, {"n_clusters": 3.0, "init": np.zeros((3, 2)), "tol": 1e-4})


def test_parameter_validation_keys_every_number_by_value():
    @numbers.Integral.register
    class Big:
        """An Integral that is not an int: keyed by value all the same."""

        def __init__(self, value):
            self.value = value

        def __index__(self):
            return self.value

        __int__ = __index__

        def __eq__(self, other):
            return self.value == other

        def __hash__(self):
            return hash(self.value)

        def __lt__(self, other):
            return self.value < other

        def __le__(self, other):
            return self.value <= other

        def __gt__(self, other):
            return self.value > other

        def __ge__(self, other):
            return self.value >= other

    X = BASE.copy()
    KMeans(2, n_init=1, max_iter=Big(5)).fit(X)
    ours = error_of(KMeans(2, n_init=1, max_iter=Big(-5)).fit, X)
    theirs = error_of(skc.KMeans(2, n_init=1, max_iter=Big(-5)).fit, X)
    assert ours[0] is not None and ours[0] == theirs[0]  # (the messages show addresses)


def test_lazy_module_imports_on_first_read_then_gives_its_holder_the_module(monkeypatch):
    import sys
    import types

    from fastkm._lazy import LazyModule

    holder = types.ModuleType("fastkm_test_holder")
    monkeypatch.setitem(sys.modules, holder.__name__, holder)
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    holder.lazy = holder.alias = LazyModule("colorsys", holder.__name__)
    holder.other = LazyModule("colorsys")  # no holder: stays lazy
    assert "colorsys" not in sys.modules
    assert holder.lazy.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    module = sys.modules["colorsys"]
    assert holder.lazy is module and holder.alias is module
    assert isinstance(holder.other, LazyModule) and holder.other.hls_to_rgb is module.hls_to_rgb
    # Something set on the lazy object before the import (a monkeypatch) stays seen.
    monkeypatch.delitem(sys.modules, "colorsys")
    holder.patched = LazyModule("colorsys", holder.__name__)
    holder.patched.rgb_to_hsv = "patched"
    assert holder.patched.hls_to_rgb is sys.modules["colorsys"].hls_to_rgb
    assert isinstance(holder.patched, LazyModule) and holder.patched.rgb_to_hsv == "patched"


def test_fitted_check_asks_a_subclass_fitted_hook():
    # With cluster_centers_ set, predict skips scikit-learn's check_is_fitted,
    # unless the class says itself whether it is fitted.
    from sklearn.exceptions import NotFittedError

    class NeverFitted(KMeans):
        def __sklearn_is_fitted__(self):
            return False

    X = np.arange(12.0).reshape(6, 2)
    for cls, fitted in [(KMeans, True), (NeverFitted, False)]:
        model = cls(2, n_init=1, random_state=0).fit(X)
        if fitted:
            assert model.predict(X).shape == (6,)
        else:
            with pytest.raises(NotFittedError):
                model.predict(X)


def _fit_context_trace(cls, fits, skip_globally):
    """What ``fits(cls, init)`` saw: the validations, the flag within each fit and after, the errors."""
    seen = []

    def init(X, k, random_state):
        seen.append(sklearn.get_config()["skip_parameter_validation"])
        sklearn.set_config(assume_finite=True)  # within the fit: undone after it, as any setting
        return X[:k].copy()

    validate = cls._validate_params
    with mock.patch.object(cls, "_validate_params", autospec=True, side_effect=validate) as spy:
        with sklearn.config_context(skip_parameter_validation=skip_globally):
            errors = [error_of(fit, cls, init)[0] for fit in fits]
            after = sklearn.get_config()["skip_parameter_validation"], sklearn.get_config()["assume_finite"]
    return spy.call_count, seen, after, errors


@pytest.mark.parametrize("skip_globally", [False, True])
def test_fit_context_validates_and_skips_nested_validation_as_scikit_learn(skip_globally):
    X = BASE.copy()
    bad = X.copy()
    bad[3, 1] = np.nan
    fits = [
        lambda cls, init: cls(3, init=init, n_init=1).fit(X),
        lambda cls, init: cls(3, init=init, n_init=1).fit(bad),  # raises: the flag is put back
    ]
    ours = _fit_context_trace(KMeans, fits, skip_globally)
    assert ours == _fit_context_trace(skc.KMeans, fits, skip_globally)

    def partial_fits(cls, init):
        km = cls(3, init=init, n_init=1)
        km.partial_fit(X)
        km.partial_fit(X)  # fitted: not validated again

    ours = _fit_context_trace(MiniBatchKMeans, [partial_fits], skip_globally)
    assert ours == _fit_context_trace(skc.MiniBatchKMeans, [partial_fits], skip_globally)
    assert ours[0] == (0 if skip_globally else 1)
