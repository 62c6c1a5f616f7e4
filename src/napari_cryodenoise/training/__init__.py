"""Training denoisers: Noise2Noise on even/odd halves of movies, blind-spot on single images.

Typical use::

    from napari_cryodenoise.training import TrainConfig, pairs_from_movies, train_noise2noise

    pairs = pairs_from_movies(["a.mrcs", "b.mrcs"], frames="0:40", align=True)
    result = train_noise2noise(pairs, TrainConfig(minutes=10, output="my_model.pt"))
    result.model  # best network, loadable later with load_model("my_model.pt")
"""

from .checkpoints import (
    build_network,
    load_network,
    load_training_checkpoint,
    save_network,
    save_training_checkpoint,
)
from .masked import blind_spot
from .noise2noise import (
    TOPAZ_DEFAULTS,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
    TrainStatus,
    export_topaz,
    train,
    train_masked,
    train_noise2noise,
    validation_loss,
)
from .pair_sources import pairs_from_pair_folder, pairs_from_star
from .pairs import (
    ImagePair,
    MovieReader,
    PairSource,
    estimate_drift,
    pair_from_arrays,
    pair_from_movie,
    pairs_from_files,
    pairs_from_folders,
    pairs_from_movies,
    parse_frame_range,
    read_single_images,
)
from .sampling import CropSampler, split_validation

__all__ = [
    "TOPAZ_DEFAULTS",
    "CropSampler",
    "ImagePair",
    "MovieReader",
    "PairSource",
    "TrainConfig",
    "TrainResult",
    "TrainStatus",
    "TrainingCancelled",
    "blind_spot",
    "build_network",
    "estimate_drift",
    "export_topaz",
    "load_network",
    "load_training_checkpoint",
    "pair_from_arrays",
    "pair_from_movie",
    "pairs_from_files",
    "pairs_from_folders",
    "pairs_from_movies",
    "pairs_from_pair_folder",
    "pairs_from_star",
    "parse_frame_range",
    "read_single_images",
    "save_network",
    "save_training_checkpoint",
    "split_validation",
    "train",
    "train_masked",
    "train_noise2noise",
    "validation_loss",
]
