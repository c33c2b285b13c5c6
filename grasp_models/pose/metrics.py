"""Category-level 9-DoF pose metrics as NOCS defines them, with the 3D-IoU bug fixed (numpy only, no torch).

Definitions (NOCS, Wang et al. CVPR 2019, ``utils.py`` of hughw19/NOCS_CVPR2019, and the revision Diff9D ships):

- A pose is NOCS's 4x4 ``sRT``: ``[[s R, t], [0, 0, 0, 1]]`` with ``R`` a rotation, ``t`` the translation in m
  (camera frame) and ``s`` the object's scale (the diagonal of its box); ``scales`` (3,) are the box extents in
  NOCS space, so the metric extents are ``s * scales``.
- **3D IoU**: the IoU of the camera-frame axis-aligned bounds of the two posed boxes' 8 corners. NOCS's
  ``compute_3d_iou_new`` takes the min/max of the (3, 8) corner array along axis 0 -- over x, y, z of each corner
  instead of over the corners -- which is the bug; here (as in Diff9D's corrected code) the bounds are taken over the
  corners. Bottle, bowl and can (and the mug when its handle is not visible) are symmetric about y: the predicted
  box is turned about its own y axis in 20 steps of 18 degrees and the largest IoU counts.
- **Rotation error** (degrees): the geodesic angle ``arccos((tr(R1 R2^T) - 1) / 2)``; for the symmetric cases the
  angle between the two y axes. **Translation error**: ``|t1 - t2|`` in cm. (The cosine is clipped to [-1, 1]
  everywhere; NOCS clips only in the asymmetric branch.)
- **Matching** per image and class, greedy by descending score: IoU matching takes each prediction's best unmatched
  ground truth of the same class with IoU strictly above the threshold; pose matching takes the unmatched ground
  truth with the smallest ``degrees + cm`` that is within both thresholds. With ``use_matches_for_pose`` (as NOCS's
  and Diff9D's evaluation scripts call it, at IoU 0.1) only the pairs matched at 3D IoU > 0.1 take part in pose
  matching.
- **AP**: VOC style -- precision made monotone from the right and integrated over the recall steps; recall is over
  the class's ground-truth instances. **mAP** is the mean over the six classes that have ground truth (NOCS averages
  all six rows; a class without ground truth would be NaN there).

Ties in score keep the file's order (a stable sort; NOCS's ``argsort()[::-1]`` reverses ties).
Result files are NOCS's per-image pickles (:data:`RESULT_KEYS`); :func:`load_results` checks every key and value
and raises :class:`~manipstack.errors.InputError` naming the file and the key.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manipstack.assets.pose_categories import CATEGORIES
from manipstack.errors import InputError, MissingInputError

SYNSET_NAMES: tuple[str, ...] = ("BG", *CATEGORIES)
"""NOCS's class names by class id (0 = background)."""
SYMMETRIC_NAMES = ("bottle", "bowl", "can")
RESULT_KEYS: tuple[str, ...] = ("gt_class_ids", "gt_RTs", "gt_scales", "gt_handle_visibility", "pred_class_ids",
                                "pred_scores", "pred_RTs", "pred_scales")
"""Keys of a NOCS result pickle that the evaluation reads (``pred_bboxes``, ``image_path`` ... may be there too)."""
IOU_THRESHOLDS = tuple(np.round(np.arange(101) / 100, 2).tolist())
"""3D IoU thresholds 0, 0.01, ..., 1 (Diff9D's evaluation)."""
DEGREE_THRESHOLDS = tuple(float(d) for d in range(61))
"""Rotation thresholds 0..60 degrees (Diff9D's evaluation)."""
SHIFT_THRESHOLDS = tuple(i / 2 for i in range(21))
"""Translation thresholds 0..10 cm in steps of 0.5 (Diff9D's evaluation)."""
N_SYMMETRY_STEPS = 20
ORTHONORMAL_TOL = 1e-3


# ---------------------------------------------------------------------------------------------------- geometry
def box_corners(scales: np.ndarray) -> np.ndarray:
    """The 8 corners (8, 3) of a box of extents ``scales`` (3,) centred at the origin."""
    half = np.asarray(scales, dtype=float) / 2
    signs = np.array([[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (1, -1)], dtype=float)
    return signs * half


def transform(sRT: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 3) mapped by a 4x4 transform."""
    return points @ sRT[:3, :3].T + sRT[:3, 3]


def y_rotation(theta: float) -> np.ndarray:
    """4x4 rotation by ``theta`` rad about y."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1.0]])


def is_symmetric(class_name: str, handle_visible: bool) -> bool:
    """Whether NOCS treats the object as symmetric about y (bottle, bowl, can; a mug whose handle is hidden)."""
    return class_name in SYMMETRIC_NAMES or (class_name == "mug" and not handle_visible)


def aabb_iou(sRT_1: np.ndarray, sRT_2: np.ndarray, scales_1: np.ndarray, scales_2: np.ndarray) -> float:
    """IoU of the camera-frame axis-aligned bounds of two posed boxes (the corrected NOCS definition)."""
    corners_1 = transform(sRT_1, box_corners(scales_1))
    corners_2 = transform(sRT_2, box_corners(scales_2))
    lo_1, hi_1 = corners_1.min(axis=0), corners_1.max(axis=0)  # over the corners: the fix
    lo_2, hi_2 = corners_2.min(axis=0), corners_2.max(axis=0)
    overlap = np.minimum(hi_1, hi_2) - np.maximum(lo_1, lo_2)
    intersection = float(np.prod(overlap)) if np.min(overlap) >= 0 else 0.0
    union = float(np.prod(hi_1 - lo_1) + np.prod(hi_2 - lo_2)) - intersection
    return intersection / union if union > 0 else 0.0


def iou_3d(sRT_1: np.ndarray, sRT_2: np.ndarray, scales_1: np.ndarray, scales_2: np.ndarray, class_name: str,
           handle_visible: bool = True) -> float:
    """3D IoU of prediction 1 and ground truth 2 of the same class; symmetric classes take the best of 20 turns of
    the prediction about its y axis."""
    if not is_symmetric(class_name, handle_visible):
        return aabb_iou(sRT_1, sRT_2, scales_1, scales_2)
    return max(aabb_iou(sRT_1 @ y_rotation(2 * np.pi * i / N_SYMMETRY_STEPS), sRT_2, scales_1, scales_2)
               for i in range(N_SYMMETRY_STEPS))


def split_sRT(sRT: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation (3, 3), translation (3,) and scale of an ``sRT`` (the scale is the cube root of the determinant)."""
    scale = float(np.cbrt(np.linalg.det(sRT[:3, :3])))
    return sRT[:3, :3] / scale, sRT[:3, 3], scale


def pose_error(sRT_1: np.ndarray, sRT_2: np.ndarray, class_name: str, handle_visible: bool = True
               ) -> tuple[float, float]:
    """(rotation error in degrees, translation error in cm) between two poses of an object of ``class_name``."""
    R1, t1, _ = split_sRT(sRT_1)
    R2, t2, _ = split_sRT(sRT_2)
    if is_symmetric(class_name, handle_visible):
        y1, y2 = R1[:, 1], R2[:, 1]
        cos = y1 @ y2 / (np.linalg.norm(y1) * np.linalg.norm(y2))
    else:
        cos = (np.trace(R1 @ R2.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))), float(np.linalg.norm(t1 - t2) * 100)


# ---------------------------------------------------------------------------------------------------- matching, AP
def score_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` from high to low, ties in their original order."""
    return np.argsort(-np.asarray(scores, dtype=float), kind="stable")


def match_by_iou(ious: np.ndarray, thresholds: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Greedy IoU matching of score-sorted predictions (rows) to ground truths (columns) of one class.

    Returns:
        gt_matches (T, G) and pred_matches (T, P): the matched index or -1, per threshold.
    """
    num_pred, num_gt = ious.shape
    gt_matches = -np.ones((len(thresholds), num_gt), dtype=int)
    pred_matches = -np.ones((len(thresholds), num_pred), dtype=int)
    orders = [np.argsort(-ious[i], kind="stable") for i in range(num_pred)]
    for s, threshold in enumerate(thresholds):
        for i in range(num_pred):
            for j in orders[i]:
                if gt_matches[s, j] > -1:
                    continue
                if ious[i, j] < threshold:
                    break
                if ious[i, j] > threshold:
                    gt_matches[s, j], pred_matches[s, i] = i, j
                    break
    return gt_matches, pred_matches


def match_by_pose(errors: np.ndarray, degree_thresholds: Sequence[float], shift_thresholds: Sequence[float]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy pose matching of score-sorted predictions to ground truths of one class.

    Args:
        errors: (P, G, 2) rotation error in degrees and translation error in cm.

    Returns:
        gt_matches (D, S, G) and pred_matches (D, S, P).
    """
    num_pred, num_gt = errors.shape[:2]
    gt_matches = -np.ones((len(degree_thresholds), len(shift_thresholds), num_gt), dtype=int)
    pred_matches = -np.ones((len(degree_thresholds), len(shift_thresholds), num_pred), dtype=int)
    if num_pred == 0 or num_gt == 0:
        return gt_matches, pred_matches
    orders = [np.argsort(errors[i].sum(axis=-1), kind="stable") for i in range(num_pred)]
    for d, degrees in enumerate(degree_thresholds):
        for s, shift in enumerate(shift_thresholds):
            for i in range(num_pred):
                for j in orders[i]:
                    if gt_matches[d, s, j] > -1 or errors[i, j, 0] > degrees or errors[i, j, 1] > shift:
                        continue
                    gt_matches[d, s, j], pred_matches[d, s, i] = i, j
                    break
    return gt_matches, pred_matches


def voc_ap(pred_matched: np.ndarray, pred_scores: np.ndarray, num_gt: int) -> float:
    """VOC-style AP of predictions (matched or not, with scores) against ``num_gt`` ground truths (NaN if none)."""
    if num_gt == 0:
        return float("nan")
    order = score_order(pred_scores)
    hits = np.asarray(pred_matched, dtype=bool)[order]
    precisions = np.cumsum(hits) / (np.arange(len(hits)) + 1)
    recalls = np.cumsum(hits) / num_gt
    precisions = np.concatenate([[0.0], precisions, [0.0]])
    recalls = np.concatenate([[0.0], recalls, [1.0]])
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    steps = np.where(recalls[:-1] != recalls[1:])[0] + 1
    return float(np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps]))


@dataclass
class PoseAPs:
    """Average precisions, per class id (row ``c`` for class ``c``; row 0 unused) and their mean (last row).

    Attributes:
        iou: (7 + 1, T) AP at each 3D IoU threshold.
        pose: (7 + 1, D, S) AP at each rotation (degrees) x translation (cm) threshold pair.
        iou_thresholds, degree_thresholds, shift_thresholds: the thresholds (the pose ones end with NOCS's extra
            360 degrees / 100 cm, "no limit").
        num_gt: ground-truth instances per class id.
    """

    iou: np.ndarray
    pose: np.ndarray
    iou_thresholds: tuple[float, ...]
    degree_thresholds: tuple[float, ...]
    shift_thresholds: tuple[float, ...]
    num_gt: np.ndarray

    def iou_map(self, threshold: float, class_id: int | None = None) -> float:
        """mAP (or one class's AP) at a 3D IoU threshold, in [0, 1]."""
        row = -1 if class_id is None else class_id
        return float(self.iou[row, _index(self.iou_thresholds, threshold, "IoU")])

    def pose_map(self, degrees: float, cm: float, class_id: int | None = None) -> float:
        """mAP (or one class's AP) at a rotation / translation threshold pair, in [0, 1]."""
        row = -1 if class_id is None else class_id
        return float(self.pose[row, _index(self.degree_thresholds, degrees, "degree"),
                               _index(self.shift_thresholds, cm, "shift")])

    def summary(self) -> dict[str, object]:
        """The standard numbers in %: 3D IoU 25/50/75, 5°2cm, 5°5cm, 10°2cm, 10°5cm, mean and per class."""
        def row(class_id: int | None) -> dict[str, float]:
            values = {f"IoU{int(t * 100)}": self.iou_map(t, class_id) for t in (0.25, 0.5, 0.75)}
            values.update({f"{d}deg{c}cm": self.pose_map(d, c, class_id) for d, c in ((5, 2), (5, 5), (10, 2),
                                                                                      (10, 5))})
            return {k: round(100 * v, 2) if np.isfinite(v) else None for k, v in values.items()}

        return {"mean": row(None),
                "per_class": {SYNSET_NAMES[c]: row(c) for c in range(1, len(SYNSET_NAMES)) if self.num_gt[c] > 0},
                "num_gt": {SYNSET_NAMES[c]: int(self.num_gt[c]) for c in range(1, len(SYNSET_NAMES))}}


def _index(values: Sequence[float], value: float, what: str) -> int:
    matches = [i for i, v in enumerate(values) if abs(v - value) < 1e-9]
    if not matches:
        raise InputError(f"{what} threshold {value} was not evaluated; evaluated: {list(values)}")
    return matches[0]


def compute_aps(results: Sequence[dict], iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
                degree_thresholds: Sequence[float] = DEGREE_THRESHOLDS,
                shift_thresholds: Sequence[float] = SHIFT_THRESHOLDS, use_matches_for_pose: bool = True,
                iou_pose_threshold: float = 0.1) -> PoseAPs:
    """AP per class and mAP over a list of per-image results (dicts with :data:`RESULT_KEYS`, checked already).

    Args:
        results: per-image results as :func:`load_results` returns them.
        iou_thresholds: 3D IoU thresholds.
        degree_thresholds, shift_thresholds: rotation (degrees) and translation (cm) thresholds; NOCS's "no limit"
            (360 degrees, 100 cm) is appended to each.
        use_matches_for_pose: evaluate poses only on pairs matched at 3D IoU > ``iou_pose_threshold`` (NOCS's and
            Diff9D's scripts do).
        iou_pose_threshold: that IoU threshold (must be among ``iou_thresholds``).
    """
    iou_thresholds = tuple(float(t) for t in iou_thresholds)
    degree_thresholds = (*[float(d) for d in degree_thresholds], 360.0)
    shift_thresholds = (*[float(s) for s in shift_thresholds], 100.0)
    pose_index = _index(iou_thresholds, iou_pose_threshold, "IoU") if use_matches_for_pose else None
    n_classes = len(SYNSET_NAMES)
    iou_hits = [[] for _ in range(n_classes)]
    iou_scores = [[] for _ in range(n_classes)]
    pose_hits = [[] for _ in range(n_classes)]
    pose_scores = [[] for _ in range(n_classes)]
    num_gt = np.zeros(n_classes, dtype=int)
    num_pose_gt = np.zeros(n_classes, dtype=int)
    for result in results:
        for cls in range(1, n_classes):
            name = SYNSET_NAMES[cls]
            gt = np.flatnonzero(result["gt_class_ids"] == cls)
            pred = np.flatnonzero(result["pred_class_ids"] == cls)
            pred = pred[score_order(result["pred_scores"][pred])]
            if len(gt) == 0 and len(pred) == 0:
                continue
            visible = (result["gt_handle_visibility"][gt] != 0) if name == "mug" else np.ones(len(gt), dtype=bool)
            gt_RTs, gt_scales = result["gt_RTs"][gt], result["gt_scales"][gt]
            pred_RTs, pred_scales = result["pred_RTs"][pred], result["pred_scales"][pred]
            scores = result["pred_scores"][pred]
            ious = np.array([[iou_3d(pred_RTs[i], gt_RTs[j], pred_scales[i], gt_scales[j], name, visible[j])
                              for j in range(len(gt))] for i in range(len(pred))]).reshape(len(pred), len(gt))
            gt_match, pred_match = match_by_iou(ious, iou_thresholds)
            num_gt[cls] += len(gt)
            iou_hits[cls].append(pred_match > -1)
            iou_scores[cls].append(scores)
            keep_pred, keep_gt = np.arange(len(pred)), np.arange(len(gt))
            if pose_index is not None:
                keep_pred = np.flatnonzero(pred_match[pose_index] > -1)
                keep_gt = np.flatnonzero(gt_match[pose_index] > -1)
            errors = np.array([[pose_error(pred_RTs[i], gt_RTs[j], name, visible[j]) for j in keep_gt]
                               for i in keep_pred]).reshape(len(keep_pred), len(keep_gt), 2)
            _, pose_match = match_by_pose(errors, degree_thresholds, shift_thresholds)
            num_pose_gt[cls] += len(keep_gt)
            pose_hits[cls].append(pose_match > -1)
            pose_scores[cls].append(scores[keep_pred])
    iou_aps = np.full((n_classes + 1, len(iou_thresholds)), np.nan)
    pose_aps = np.full((n_classes + 1, len(degree_thresholds), len(shift_thresholds)), np.nan)
    for cls in range(1, n_classes):
        if num_gt[cls] == 0:
            continue
        hits = np.concatenate(iou_hits[cls], axis=-1)
        scores = np.concatenate(iou_scores[cls])
        iou_aps[cls] = [voc_ap(hits[s], scores, num_gt[cls]) for s in range(len(iou_thresholds))]
        hits = np.concatenate(pose_hits[cls], axis=-1)
        scores = np.concatenate(pose_scores[cls])
        pose_aps[cls] = [[voc_ap(hits[d, s], scores, num_pose_gt[cls]) if num_pose_gt[cls] else 0.0
                          for s in range(len(shift_thresholds))] for d in range(len(degree_thresholds))]
    with np.errstate(invalid="ignore"):
        present = num_gt[1:] > 0
        if present.any():
            iou_aps[-1] = iou_aps[1:n_classes][present].mean(axis=0)
            pose_aps[-1] = pose_aps[1:n_classes][present].mean(axis=0)
    return PoseAPs(iou_aps, pose_aps, iou_thresholds, degree_thresholds, shift_thresholds, num_gt)


# ---------------------------------------------------------------------------------------------------- result files
def _array(result: dict, key: str, path: Path, shape: tuple, dtype: type) -> np.ndarray:
    try:
        value = np.asarray(result[key], dtype=dtype)
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: key '{key}' is not a numeric array ({err})") from None
    expected = tuple(value.shape[i] if s is None else s for i, s in enumerate(shape)) if value.ndim == len(shape) \
        else None
    if expected is None or value.shape != expected:
        raise InputError(f"{path}: key '{key}' has shape {value.shape}, expected "
                         f"{tuple('N' if s is None else s for s in shape)}")
    if not np.all(np.isfinite(value)):
        raise InputError(f"{path}: key '{key}' holds NaN or inf")
    return value


def check_result(result: object, path: str | os.PathLike) -> dict[str, np.ndarray]:
    """One NOCS result (dict) with its arrays typed and checked; :class:`InputError` names ``path`` and the key."""
    path = Path(path)
    if not isinstance(result, dict):
        raise InputError(f"{path}: a NOCS result pickle holds a dict with keys {list(RESULT_KEYS)}, "
                         f"got {type(result).__name__}")
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        raise InputError(f"{path}: missing key '{missing[0]}' (a NOCS result needs {list(RESULT_KEYS)})")
    out = dict(result)
    for side in ("gt", "pred"):
        ids = _array(result, f"{side}_class_ids", path, (None,), float)
        if np.any(ids != np.round(ids)) or np.any((ids < 1) | (ids > len(CATEGORIES))):
            bad = ids[(ids != np.round(ids)) | (ids < 1) | (ids > len(CATEGORIES))][0]
            raise InputError(f"{path}: key '{side}_class_ids' holds class id {bad:g}, outside the six classes "
                             f"1..{len(CATEGORIES)} ({', '.join(CATEGORIES)})")
        n = len(ids)
        out[f"{side}_class_ids"] = ids.astype(int)
        RTs = _array(result, f"{side}_RTs", path, (n, 4, 4), float)
        for i, sRT in enumerate(RTs):
            if not np.allclose(sRT[3], [0, 0, 0, 1], atol=1e-6):
                raise InputError(f"{path}: key '{side}_RTs'[{i}] has last row {sRT[3].tolist()}, expected [0, 0, 0, 1]")
            det = np.linalg.det(sRT[:3, :3])
            rotation = sRT[:3, :3] / np.cbrt(det) if det > 0 else None
            if rotation is None or np.abs(rotation.T @ rotation - np.eye(3)).max() > ORTHONORMAL_TOL:
                raise InputError(f"{path}: key '{side}_RTs'[{i}] is not a scaled rotation (its 3x3 block divided by "
                                 f"the cube root of its determinant {det:.3g} is not orthonormal with det 1)")
        out[f"{side}_RTs"] = RTs
        scales = _array(result, f"{side}_scales", path, (n, 3), float)
        if np.any(scales <= 0):
            raise InputError(f"{path}: key '{side}_scales' holds a non-positive extent")
        out[f"{side}_scales"] = scales
    out["gt_handle_visibility"] = _array(result, "gt_handle_visibility", path, (len(out["gt_class_ids"]),), float)
    out["pred_scores"] = _array(result, "pred_scores", path, (len(out["pred_class_ids"]),), float)
    return out


def load_result(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and check one NOCS result pickle."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            result = pickle.load(f)  # noqa: S301 -- result files are the user's own
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as err:
        raise InputError(f"{path}: not a readable pickle ({err})") from None
    return check_result(result, path)


def load_results(folder: str | os.PathLike) -> list[dict[str, np.ndarray]]:
    """Every ``*.pkl`` result in ``folder`` (sorted by name), checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"predictions folder not found: {folder}")
    files = sorted(folder.glob("*.pkl"))
    if not files:
        raise InputError(f"predictions folder {folder} holds no *.pkl result files")
    return [load_result(p) for p in files]


def write_result(path: str | os.PathLike, result: dict) -> Path:
    """Write one per-image result as a NOCS pickle (atomically)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(result, f, protocol=4)
    os.replace(tmp, path)
    return path
