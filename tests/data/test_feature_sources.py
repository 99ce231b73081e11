"""Which published feature file belongs to which video (claws.data.feature_sources)."""

import numpy as np
import pytest

from claws.data.feature_sources import (
    FeatureEntry, find_feature_files, index_feature_files, peek_feature_dim,
)
from claws.data.videos import DatasetError


def test_feature_file_index_refuses_ambiguous_files(tmp_path):
    rows = np.zeros((2, 6), np.float32)
    np.save(tmp_path / "a.npy", rows)
    np.save(tmp_path / "a_i3d.npy", rows)
    index = index_feature_files(tmp_path)
    with pytest.raises(DatasetError, match="several feature files"):
        find_feature_files(index, "a")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "b.npy", rows)
    np.save(tmp_path / "b.npy", rows)
    with pytest.raises(DatasetError, match="both hold video b"):
        index_feature_files(tmp_path)


def test_the_width_of_a_text_feature_file_with_a_byte_order_mark(tmp_path, with_bom):
    """Issue 20 item 8: the BOM glued to a CSV's width line made it a one-column feature row."""
    path = with_bom(tmp_path / "v.csv", "16\n0.5,1.25,-2.0\n")
    assert peek_feature_dim(FeatureEntry((path,))) == 3
