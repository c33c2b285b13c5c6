"""NOCS pose metrics on hand-computed cases: the corrected 3D IoU, symmetric handling, errors, matching, VOC AP,
and result files with bad contents (errors name the file and the key)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from manipstack.errors import InputError
from manipstack.grasp_models.pose import metrics as m


def sRT(rotation=None, t=(0.0, 0.0, 1.0), scale=1.0):
    out = np.eye(4)
    out[:3, :3] = scale * (np.eye(3) if rotation is None else np.asarray(rotation))
    out[:3, 3] = t
    return out


def rot_y(deg):
    return m.y_rotation(np.radians(deg))[:3, :3]


def rot_x(deg):
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def buggy_nocs_iou(RT_1, RT_2, scales_1, scales_2):
    """NOCS's compute_3d_iou_new as published: bounds over axis 0 of the (3, 8) corner array (for the test only)."""
    b1 = m.transform(RT_1, m.box_corners(scales_1)).T
    b2 = m.transform(RT_2, m.box_corners(scales_2)).T
    hi1, lo1, hi2, lo2 = b1.max(0), b1.min(0), b2.max(0), b2.min(0)
    overlap = np.minimum(hi1, hi2) - np.maximum(lo1, lo2)
    inter = 0 if overlap.min() < 0 else np.prod(overlap)
    return inter / (np.prod(hi1 - lo1) + np.prod(hi2 - lo2) - inter)


def test_identical_boxes_have_iou_one():
    pose = sRT(rot_x(30), (0.1, -0.05, 0.8), 0.3)
    assert m.iou_3d(pose, pose, [0.5, 0.7, 0.4], [0.5, 0.7, 0.4], "camera") == pytest.approx(1.0)


def test_known_offset_gives_known_iou():
    # unit cubes, one shifted by half its side along x: overlap 0.5, union 1.5
    a, b = sRT(t=(0, 0, 1)), sRT(t=(0.5, 0, 1))
    assert m.iou_3d(a, b, [1, 1, 1], [1, 1, 1], "laptop") == pytest.approx(1 / 3)
    # a box of half the size inside: 0.125 / 1
    assert m.iou_3d(a, a, [0.5, 0.5, 0.5], [1, 1, 1], "laptop") == pytest.approx(0.125)


def test_corrected_iou_differs_from_nocs_bug():
    # a 2 x 1 x 1 box against itself moved 0.5 along y: overlap 2 x 0.5 x 1 = 1, union 2 + 2 - 1
    a, b = sRT(t=(0, 0, 2)), sRT(t=(0, 0.5, 2))
    truth = (2 * 0.5 * 1) / (2 + 2 - 1)
    assert m.iou_3d(a, b, [2, 1, 1], [2, 1, 1], "camera") == pytest.approx(truth)
    assert abs(buggy_nocs_iou(a, b, [2, 1, 1], [2, 1, 1]) - truth) > 0.05


def test_symmetric_rotation_about_y_is_free():
    pose = sRT(rot_x(20), (0, 0, 1), 0.25)
    turned = pose.copy()
    turned[:3, :3] = pose[:3, :3] @ rot_y(37)
    scales = [0.3, 0.9, 0.3]
    assert m.pose_error(turned, pose, "bottle")[0] == pytest.approx(0.0, abs=1e-5)
    turned_36 = pose.copy()
    turned_36[:3, :3] = pose[:3, :3] @ rot_y(36)  # two of the 18-degree steps
    assert m.iou_3d(turned_36, pose, scales, scales, "bottle") == pytest.approx(1.0)
    assert m.iou_3d(turned_36, pose, scales, scales, "camera") < 0.9
    assert m.pose_error(turned, pose, "camera")[0] == pytest.approx(37.0, abs=1e-5)
    assert m.pose_error(turned, pose, "mug", handle_visible=False)[0] == pytest.approx(0.0, abs=1e-5)
    assert m.pose_error(turned, pose, "mug", handle_visible=True)[0] == pytest.approx(37.0, abs=1e-5)
    tilted = pose.copy()
    tilted[:3, :3] = pose[:3, :3] @ rot_x(10)
    assert m.pose_error(tilted, pose, "can")[0] == pytest.approx(10.0, abs=1e-5)


def test_translation_error_in_cm_and_scale_removed():
    a, b = sRT(t=(0, 0, 1), scale=0.2), sRT(rot_x(10), (0.03, 0.04, 1), 0.5)
    degrees, cm = m.pose_error(a, b, "laptop")
    assert degrees == pytest.approx(10.0, abs=1e-5) and cm == pytest.approx(5.0)


def test_voc_ap_hand_case():
    # hits 1, 0, 1 by descending score, 3 ground truths: precision envelope 1, 2/3, 2/3 at recalls 1/3, 1/3, 2/3
    assert m.voc_ap(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7]), 3) == pytest.approx(1 / 3 + 1 / 3 * 2 / 3)
    assert m.voc_ap(np.array([0, 1]), np.array([0.9, 0.1]), 1) == pytest.approx(0.5)
    assert np.isnan(m.voc_ap(np.zeros(0), np.zeros(0), 0))


def test_greedy_matching_by_score():
    ious = np.array([[0.8], [0.9]])  # rows sorted by score: the first prediction takes the ground truth
    gt, pred = m.match_by_iou(ious, [0.5])
    assert gt.tolist() == [[0]] and pred.tolist() == [[0, -1]]
    errors = np.array([[[3.0, 1.0], [1.0, 0.5]]])  # one prediction, two ground truths: the closer one
    gt, pred = m.match_by_pose(errors, [5.0], [2.0])
    assert pred[0, 0].tolist() == [1] and gt[0, 0].tolist() == [-1, 0]


def _result(gt_poses, pred_poses, classes=(1,), pred_classes=None, scales=(0.3, 0.9, 0.3)):
    pred_classes = classes if pred_classes is None else pred_classes
    return {"gt_class_ids": np.array(classes), "gt_RTs": np.array(gt_poses),
            "gt_scales": np.array([scales] * len(classes)), "gt_handle_visibility": np.ones(len(classes)),
            "pred_class_ids": np.array(pred_classes), "pred_scores": np.ones(len(pred_classes)),
            "pred_RTs": np.array(pred_poses), "pred_scales": np.array([scales] * len(pred_classes))}


def test_map_of_perfect_and_shifted_estimates():
    good = sRT(t=(0, 0, 1), scale=0.3)
    off = sRT(t=(0.03, 0, 1), scale=0.3)  # 3 cm off: inside 5 cm, outside 2 cm
    results = [m.check_result(_result([good], [good], classes=(3,)), "a"),
               m.check_result(_result([good], [off], classes=(5,)), "b")]
    aps = m.compute_aps(results)
    assert aps.pose_map(5, 5) == pytest.approx(1.0)
    assert aps.pose_map(5, 2) == pytest.approx(0.5)  # camera 1, laptop 0
    assert aps.iou_map(0.5, class_id=3) == pytest.approx(1.0)
    summary = aps.summary()
    assert set(summary["per_class"]) == {"camera", "laptop"} and summary["mean"]["5deg5cm"] == 100.0


def test_result_files_with_bad_contents_name_file_and_key(tmp_path):
    good = sRT(t=(0, 0, 1), scale=0.3)
    base = _result([good], [good])
    cases = {"missing": ({k: v for k, v in base.items() if k != "pred_scales"}, "pred_scales"),
             "class": ({**base, "pred_class_ids": np.array([7])}, "pred_class_ids"),
             "rotation": ({**base, "pred_RTs": np.array([good + np.diag([0.1, 0, 0, 0])])}, "pred_RTs")}
    for name, (result, key) in cases.items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(pickle.dumps(result))
        with pytest.raises(InputError) as err:
            m.load_result(path)
        assert str(path) in str(err.value) and key in str(err.value)
    (tmp_path / "ok").mkdir()
    m.write_result(tmp_path / "ok" / "x.pkl", base)
    assert len(m.load_results(tmp_path / "ok")) == 1
