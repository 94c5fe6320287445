"""The Shap-E backend on a tiny, randomly initialised pipeline saved and reloaded from disk.

What this proves: the backend finds a ``save_pretrained`` folder, loads it with
``local_files_only`` in fp32 on CPU, runs diffusers' real image encoder, prior, scheduler
and renderer code, extracts a surface with marching-cubes tables derived in
:mod:`workers.gpu.cube_cases`, and finishes it (closed, within a face budget, coloured,
reframed). What it does not prove: that Shap-E's trained weights give good shapes — the
weights here are random, so the surface is noise of the right kind, not an object.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import diffusers
import numpy as np
import pytest
import torch
import transformers
import trimesh
from PIL import Image, ImageDraw

from core.errors import ConfigurationError, InvalidInput
from workers.gpu.backends import GeneratorBackend
from workers.gpu.cube_cases import cube_case_tables
from workers.gpu.shap_e import ShapEBackend, ShapESettings, ShapEStage
from workers.gpu.vram import DeviceBudget, MeasuredMesh

CPU = torch.device("cpu")
GRID = 16
TINY = ShapESettings(
    stages={
        "preview": ShapEStage(steps=2, grid=GRID),
        "medium": ShapEStage(steps=2, grid=GRID + 4),
        "final": ShapEStage(steps=3, grid=GRID + 8),
    },
    query_batch_size=1024,
    min_grid=8,
)


def _tiny_pipeline() -> diffusers.ShapEImg2ImgPipeline:
    """Shap-E img2img with components a few kilobytes large (shapes as in diffusers' tests)."""
    torch.manual_seed(0)
    encoder = transformers.CLIPVisionModel(
        transformers.CLIPVisionConfig(
            hidden_size=32, image_size=32, projection_dim=32, intermediate_size=37,
            num_attention_heads=4, num_channels=3, num_hidden_layers=2, patch_size=4,
        )
    )
    processor = transformers.CLIPImageProcessor(
        crop_size=32, size=32, do_center_crop=True, do_normalize=True, do_resize=True,
        resample=3,
    )
    prior = diffusers.PriorTransformer(
        num_attention_heads=2, attention_head_dim=16, embedding_dim=32, num_embeddings=32,
        embedding_proj_dim=32, time_embed_dim=128, num_layers=1, clip_embed_dim=64,
        additional_embeddings=0, time_embed_act_fn="gelu", norm_in_type="layer",
        embedding_proj_norm_type="layer", encoder_hid_proj_type=None, added_emb_type=None,
    )
    renderer = diffusers.pipelines.shap_e.ShapERenderer(
        param_shapes=((8, 93), (8, 8), (8, 8), (8, 8)), d_latent=32, d_hidden=8,
        n_output=12, background=(0.1, 0.1, 0.1),
    )
    cases, masks = cube_case_tables()
    renderer.mesh_decoder.cases.copy_(torch.from_numpy(cases))
    renderer.mesh_decoder.masks.copy_(torch.from_numpy(masks))
    scheduler = diffusers.HeunDiscreteScheduler(
        beta_schedule="exp", num_train_timesteps=1024, prediction_type="sample",
        use_karras_sigmas=True, clip_sample=True, clip_sample_range=1.0,
    )
    return diffusers.ShapEImg2ImgPipeline(
        prior=prior, image_encoder=encoder, image_processor=processor,
        scheduler=scheduler, shap_e_renderer=renderer,
    )


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding the tiny pipeline as ``shap-e-img2img``."""
    root = tmp_path_factory.mktemp("models")
    _tiny_pipeline().save_pretrained(root / "shap-e-img2img")
    return root


@pytest.fixture(scope="module")
def backend(models_dir: Path) -> ShapEBackend:
    """One backend (and so one loaded pipeline) shared by the tests that only read it."""
    return ShapEBackend(models_dir, TINY, DeviceBudget(CPU))


def _photo() -> Image.Image:
    """A red disc on white: an object on a plain ground, like an upload."""
    image = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=(200, 40, 40))
    return image


def test_is_a_generator_backend(backend: ShapEBackend) -> None:
    assert isinstance(backend, GeneratorBackend)
    assert backend.capabilities["needs_weights"] is True


def test_unavailable_without_folder_or_weights(tmp_path: Path) -> None:
    ok, reason = ShapEBackend(None).available()
    assert not ok and "ORFEAS_MODELS_DIR" in reason
    ok, reason = ShapEBackend(tmp_path).available()
    assert not ok and "model_index.json missing" in reason
    with pytest.raises(ConfigurationError, match=r"model_index\.json missing"):
        ShapEBackend(tmp_path).generate(_photo(), stage="preview", seed=0, device=CPU,
                                        face_budget=None)


def test_saved_pipeline_loads_locally_in_fp32(backend: ShapEBackend) -> None:
    assert backend.available()[0]
    pipe = backend.pipeline(backend._budget(CPU))
    assert pipe.prior.dtype == torch.float32
    assert pipe.shap_e_renderer.dtype == torch.float32
    assert bool(pipe.shap_e_renderer.mesh_decoder.masks.any())


def test_generate_runs_encoder_prior_and_decoder(backend: ShapEBackend) -> None:
    generated = backend.generate(_photo(), stage="preview", seed=3, device=CPU,
                                 face_budget=None)
    assert isinstance(generated, MeasuredMesh)
    decoder = generated.report["decoder"]
    assert isinstance(decoder, dict)
    assert decoder["field_shape"] == (GRID + 2,) * 3  # the grid plus Shap-E's padding
    assert decoder["raw_faces"] > 0
    mesh = generated.mesh
    assert generated.resolution == GRID and generated.face_count == len(mesh.faces) > 0
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert np.allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-9)
    assert np.isclose(np.ptp(mesh.vertices, axis=0).max(), 1.0)
    assert mesh.visual.vertex_colors.shape == (len(mesh.vertices), 4)
    assert generated.report["dtype"] == "float32" and generated.report["device"] == "cpu"
    assert generated.report["attempts"] == 1
    assert {"load", "prior", "decode", "colour", "total"} <= set(generated.timings)


def test_same_seed_same_mesh(backend: ShapEBackend) -> None:
    first, second = (
        backend.generate(_photo(), stage="preview", seed=3, device=CPU, face_budget=None)
        for _ in range(2)
    )
    assert np.array_equal(first.mesh.vertices, second.mesh.vertices)


def test_face_budget_is_met(backend: ShapEBackend) -> None:
    unbounded = backend.generate(_photo(), stage="medium", seed=1, device=CPU,
                                 face_budget=None)
    budget = unbounded.face_count // 3
    generated = backend.generate(_photo(), stage="medium", seed=1, device=CPU,
                                 face_budget=budget)
    assert 0 < generated.face_count <= budget
    assert generated.mesh.visual.vertex_colors.shape == (len(generated.mesh.vertices), 4)


def test_unknown_stage_and_tiny_budget_are_refused(backend: ShapEBackend) -> None:
    with pytest.raises(InvalidInput, match="unknown stage"):
        backend.generate(_photo(), stage="huge", seed=0, device=CPU,  # type: ignore[arg-type]
                         face_budget=None)
    with pytest.raises(InvalidInput, match="at least 4"):
        backend.generate(_photo(), stage="preview", seed=0, device=CPU, face_budget=2)


def test_field_without_surface_is_an_error_not_a_mesh(models_dir: Path) -> None:
    """Push the signed distance below zero everywhere: the decoder sees no crossing."""
    backend = ShapEBackend(models_dir, TINY, DeviceBudget(CPU))
    last = backend.pipeline(backend._budget(CPU)).shap_e_renderer.mlp.mlp[-1]
    with torch.no_grad():
        last.weight[0].zero_()
        last.bias[0] = -5.0
    with pytest.raises(InvalidInput, match=r"no surface.*\(18, 18, 18\)"):
        backend.generate(_photo(), stage="preview", seed=0, device=CPU, face_budget=None)


def test_checkpoint_without_cube_tables_is_refused(models_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(models_dir, tmp_path, dirs_exist_ok=True)
    folder = tmp_path / "shap-e-img2img"
    pipe = diffusers.ShapEImg2ImgPipeline.from_pretrained(folder, local_files_only=True)
    pipe.shap_e_renderer.mesh_decoder.masks.zero_()
    pipe.save_pretrained(folder)
    with pytest.raises(ConfigurationError, match="empty marching-cubes tables"):
        ShapEBackend(tmp_path, TINY).generate(_photo(), stage="preview", seed=0, device=CPU,
                                              face_budget=None)


def test_cube_tables_close_a_wavy_surface() -> None:
    """The derived tables give a closed, outward surface through diffusers' decoder."""
    from diffusers.pipelines.shap_e.renderer import MeshDecoder

    decoder = MeshDecoder()
    cases, masks = cube_case_tables()
    decoder.cases.copy_(torch.from_numpy(cases))
    decoder.masks.copy_(torch.from_numpy(masks))
    axis = torch.linspace(-1.0, 1.0, 24)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    field = torch.sin(4 * x) * torch.cos(3 * y) + torch.sin(5 * z) - 0.2
    field = torch.nn.functional.pad(field, (1, 1, 1, 1, 1, 1), value=-1.0)
    out = decoder(field, torch.tensor([-1.0, -1.0, -1.0]), torch.tensor([2.0, 2.0, 2.0]))
    mesh = trimesh.Trimesh(out.verts.numpy(), out.faces.numpy(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0


def test_int8_prior_on_cpu_is_measured_against_fp32(models_dir: Path) -> None:
    """The int8 prior is opt-in; its effect on time and on the mesh is measured here on the
    same image and seed, not assumed (on these tiny random weights the figures mean little;
    the test proves the path runs and reports itself)."""
    from dataclasses import replace

    fp32 = ShapEBackend(models_dir, TINY, DeviceBudget(CPU))
    int8 = ShapEBackend(models_dir, replace(TINY, int8_on_cpu=True), DeviceBudget(CPU))
    plain = fp32.generate(_photo(), stage="preview", seed=5, device=CPU, face_budget=None)
    quick = int8.generate(_photo(), stage="preview", seed=5, device=CPU, face_budget=None)
    pipe = int8.pipeline(int8._budget(CPU))
    linears = [m for m in pipe.prior.modules() if isinstance(m, torch.nn.Linear)]
    assert not linears  # every linear layer of the prior was swapped for its int8 version
    assert quick.report["prior_int8"] is True and plain.report["prior_int8"] is False
    assert quick.mesh.is_watertight and quick.face_count > 0
    assert plain.timings["prior"] > 0 and quick.timings["prior"] > 0
    extent = np.ptp(plain.mesh.vertices, axis=0).max()
    assert np.isclose(np.ptp(quick.mesh.vertices, axis=0).max(), extent)  # same framing
