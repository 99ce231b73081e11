"""Which published feature file belongs to which video (claws.data.feature_sources)."""

import numpy as np
import pytest

from claws.data.feature_sources import find_feature_files, index_feature_files
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
