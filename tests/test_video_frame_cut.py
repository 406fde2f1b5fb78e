"""An avatar whose training video ended inside its view (AvatarMetadata.frame) is framed as that
video was: white past the edge, live (AvatarRenderer, at any output size) and offline
(runtime.offline.render_frames), and unchanged inside."""
import numpy as np
import pytest
import torch

from avatar.checkpoint import load_avatar
from runtime.inference import create_backend
from runtime.offline import render_frames
from runtime.pipeline import AvatarRenderer, avatar_neutral

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_renders_are_cut_to_the_training_videos_frame(demo_avatar):
    avatar = load_avatar(demo_avatar)
    neutral = avatar_neutral(avatar)
    pose = np.concatenate([neutral.rotation, neutral.translation]).astype(np.float32)[None]

    def live(size: int) -> np.ndarray:
        return AvatarRenderer(avatar, create_backend("torch", avatar), raster="cpu", size=size).render(neutral)

    def offline() -> np.ndarray:
        return next(render_frames(avatar, neutral.expression[None].astype(np.float32), pose, "cpu",
                                  torch.device("cpu")))

    plain_live, plain_offline = live(64), offline()
    width, height = avatar.camera.width, avatar.camera.height
    avatar.metadata.frame = (0.0, 0.0, float(width), 0.6 * height)  # the video ended 60 % down the view
    cut_live, cut_offline = live(64), offline()
    for plain, cut in ((plain_live, cut_live), (plain_offline, cut_offline)):
        edge = 0.6 * cut.shape[0]
        below, above = int(np.ceil(edge)), int(np.floor(edge))
        assert (plain[below:] < 250).any()  # the mannequin's chin and neck are there uncut
        assert (cut[below:] == 255).all()
        assert np.array_equal(cut[:above], plain[:above])
