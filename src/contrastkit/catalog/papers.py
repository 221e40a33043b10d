"""The registry of seed papers (``../shared/seeds``): one entry per paper, in the seed file's order.

Each entry says what the paper contributes to the library (``kind``), the verdict of the
methods catalog (FULL: implemented and checked on offline data; PARTIAL: implemented with
math tests, its paper-scale check needs data or models that are not offline; OUT: nothing
honest to implement), where it lives (``components``: dotted paths a test imports), which
issue owns it, and which benchmark measures it: ``checks`` are row keys of
``benchmarks/seed_checks.py`` (results in ``contrastkit/catalog/check_results.json``), and
``benchmark`` names another ``BENCHMARKS.md`` section where the paper's own issue measured it.
"""

from __future__ import annotations

from dataclasses import dataclass

from contrastkit.utils.checks import unknown_name_error

VERDICTS = ("FULL", "PARTIAL", "OUT")
STATUSES = ("implemented", "partly implemented", "not implemented", "out of scope")


@dataclass(frozen=True)
class Paper:
    """One seed paper.

    Attributes:
        number: its position in the seed file (1-59), as in METHODS.md.
        name: the short name used across the library and docs (unique, lower-case, no spaces).
        title: the paper's title (shortened where long).
        kind: the reusable component the paper contributes.
        verdict: FULL, PARTIAL or OUT (see the module docstring).
        status: implemented / partly implemented / not implemented / out of scope.
        issue: the issue that owns the paper (``None``: no issue yet).
        components: dotted paths of what implements it (``contrastkit.`` prefix omitted).
        checks: row keys of ``benchmarks/seed_checks.py`` that measure its claim.
        benchmark: another ``BENCHMARKS.md`` section (by its marker name) that measures it.
        note: one line on what is missing or how it deviates.
    """

    number: int
    name: str
    title: str
    kind: str
    verdict: str
    status: str
    issue: int | None = None
    components: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    benchmark: str | None = None
    note: str = ""


def _p(*args: object, **kwargs: object) -> Paper:
    return Paper(*args, **kwargs)  # type: ignore[arg-type]


PAPERS: tuple[Paper, ...] = (
    _p(1, "mochi", "Hard Negative Mixing for Contrastive Learning",
       "negative sampler: feature-level mixing of the hardest queue entries", "FULL", "implemented", 6,
       ("negatives.hard_mixing.mochi_negatives", "methods.mochi.MoCHi"), ("mochi",)),
    _p(2, "beclr", "BECLR: Batch Enhanced Contrastive Few-Shot Learning",
       "memory of clustered positives (DyCE) + optimal-transport prototype alignment (OpTA)", "FULL",
       "implemented", 6, ("negatives.dyce.DyCEMemory", "eval.fewshot.opta", "eval.fewshot.evaluate_episodes",
                          "methods.beclr.BECLR"), ("beclr-1shot", "beclr-5shot")),
    _p(3, "autotcl", "Parametric Augmentation for Time Series Contrastive Learning",
       "learned augmentation (mask + scaling network), alternating training", "FULL", "implemented", 4,
       ("methods.autotcl.AutoTCL",), benchmark="ucr"),
    _p(4, "hbi", "Video-Text as Game Players: Hierarchical Banzhaf Interaction",
       "cross-modal loss (Banzhaf-interaction KL) + token merging", "PARTIAL", "partly implemented", 16,
       ("functional.banzhaf.banzhaf_interaction_exact", "functional.banzhaf.banzhaf_interaction_monte_carlo",
        "functional.banzhaf.hbi_banzhaf_interaction", "functional.banzhaf.banzhaf_alignment_loss",
        "functional.banzhaf.hbi_loss", "nn.banzhaf.BanzhafEstimator"),
       note="estimator checked against closed-form games; no token merging, no CLIP/video offline (no retrieval "
            "number); the official sampler's double softmax not copied (docs/seed-components.md)"),
    _p(5, "voltron", "Language-Driven Representation Learning for Robotics",
       "language-conditioned MAE + captioning, evaluation suite", "PARTIAL", "partly implemented", 16,
       ("nn.voltron.Voltron", "nn.voltron.FrozenLanguageModel", "functional.voltron.masked_reconstruction_loss",
        "functional.voltron.language_generation_loss", "functional.voltron.split_generation"),
       note="component with unit tests only: no offline robot video with language; no [CLS] token; key padding "
            "mask (the official masks queries, an option)"),
    _p(6, "mixed-barlow-twins", "Guarding Barlow Twins Against Overfitting with Mixed Samples",
       "loss: Barlow Twins + mixup cross-correlation regulariser", "FULL", "implemented", 6,
       ("functional.mixing.mixed_barlow_twins_regularizer", "methods.mixed_barlow_twins.MixedBarlowTwins"),
       ("mixed-barlow-twins",)),
    _p(7, "fdt", "Revisiting Multimodal Representation in Contrastive Learning: Finite Discrete Tokens",
       "shared learnable token codebook with sparsemax grounding", "PARTIAL", "implemented", 16,
       ("functional.fdt.sparsemax", "functional.fdt.fdt_embedding", "nn.token_towers.ImageTextTokenTowers",
        "methods.fdt.FDT"), benchmark="multimodal",
       note="tau_F divides (official 1000); on emoji at 200 steps level with CLIP and not yet sparse; "
            "paper-scale data (CC3M, ViT-B/32) not offline"),
    _p(8, "clam", "Contrastive Learning-Based Agent Modeling for Deep Reinforcement Learning",
       "trajectory encoder + contrastive loss for RL", "FULL", "not implemented",
       note="toy multi-agent environment; no issue yet"),
    _p(9, "mmc", "Masked Momentum Contrastive Learning for Zero-shot Semantic Understanding",
       "combined masked-modelling + self-distillation + InfoNCE loss; prompt-patch segmentation protocol",
       "PARTIAL", "implemented", 6, ("functional.mmc.mmc_loss", "eval.prompt_segmentation.prompt_segment"),
       note="ViT pretraining on ImageNet and segmentation sets are not offline"),
    _p(10, "sparse-cbm", "Sparse Concept Bottleneck Models: Gumbel Tricks in Contrastive Learning",
       "concept bottleneck head + Gumbel/contrastive/L1 losses + Concept Matrix Search", "PARTIAL", "implemented", 6,
       ("nn.concept_bottleneck.ConceptBottleneck", "nn.concept_bottleneck.concept_matrix_search"),
       note="needs CLIP-like image-text weights and concept lists, not offline"),
    _p(11, "audio-sheet-simclr", "Self-Supervised Contrastive Learning for Robust Audio-Sheet Music Retrieval",
       "per-modality SimCLR pretraining + cross-modal contrastive fine-tuning", "PARTIAL", "implemented", 16,
       ("data.music_sheets_build.build_snapshot", "nn.paired_towers.AudioSheetTowers",
        "methods.audio_sheet.AudioSheetCLIP", "eval.protocols.paired_tensors.PairedTensorsProtocol"),
       benchmark="music-sheets",
       note="music21 Essen tunes engraved by verovio, played by fluidsynth: a2s R@1 0.794 vs 0.002 random on "
            "unseen tunes; the two-stage pretraining is worse at equal steps (0.599) without the paper's extra "
            "unpaired corpora; no CCA layer"),
    _p(12, "whitenedcse", "Whitening-based Contrastive Learning of Sentence Embeddings",
       "shuffled group whitening + multi-positive InfoNCE", "PARTIAL", "implemented", 5,
       ("nn.whitening.ShuffledGroupWhitening",)),
    _p(13, "cocosoda", "CoCoSoDa: Effective Contrastive Learning for Code Search",
       "soft token augmentation + MoCo queues, inter- and intra-modal losses", "FULL", "implemented", 5,
       ("methods.cocosoda.CoCoSoDa",), benchmark="code_search"),
    _p(14, "pcl-sr", "A Practical Contrastive Learning Framework for Single-Image Super-Resolution",
       "loss: sharpened positives, blurred hard negatives, discriminator embedding", "FULL", "implemented", 6,
       ("functional.pcl_sr.pcl_sr_contrastive", "nn.super_resolution.TinySRNet"), ("pcl-sr",)),
    _p(15, "cl-code-clone", "Evaluation of Contrastive Learning with Various Code Representations for Code Clone "
       "Detection", "evaluation protocol (MAP@R)", "FULL", "implemented", 5, ("eval.retrieval.map_at_r",)),
    _p(16, "instruct-cir", "Compositional Image Retrieval via Instruction-Aware Contrastive Learning",
       "MLLM embedding extraction + two-stage contrastive tuning", "OUT", "out of scope",
       note="needs a multimodal LLM; too little public detail"),
    _p(17, "noiseclr", "NoiseCLR: A Contrastive Learning Approach for Unsupervised Discovery of Interpretable "
       "Directions in Diffusion Models", "loss over diffusion noise-prediction differences", "PARTIAL",
       "implemented", 6, ("functional.noiseclr.noiseclr_loss",),
       note="needs Stable Diffusion weights; tested with a stub denoiser"),
    _p(18, "pot", "Provable Training for Graph Contrastive Learning",
       "regulariser: node compactness by bound propagation", "FULL", "implemented", 7,
       ("functional.pot.pot_regularized_loss", "methods.graph.GRACE"), benchmark="graph"),
    _p(19, "detective", "DeTeCtive: Detecting AI-generated Text via Multi-Level Contrastive Learning",
       "multi-level contrastive loss + kNN detection", "PARTIAL", "implemented", 5,
       ("functional.multilevel.multi_level_contrastive", "eval.knn_detection.KNNDetector")),
    _p(20, "dsla", "Graph Self-Supervised Learning with Accurate Discrepancy Learning",
       "loss: original-vs-perturbed discrimination + edit distance + margin", "FULL", "implemented", 7,
       ("methods.graph.DSLA",), benchmark="graph"),
    _p(21, "smore", "SMORe: Score Models for Offline Goal-Conditioned Reinforcement Learning",
       "RL objective (dual mixture-occupancy score learning)", "FULL", "partly implemented", 17,
       ("functional.smore.smore_stable_loss", "functional.smore.expectile_loss", "functional.smore.awr_weights",
        "rl.offline_gcrl.train_offline_gc", "functional.contrastive_rl.infonce_critic_loss",
        "functional.contrastive_rl.binary_nce_critic_loss", "rl.critics.train_contrastive_critic"),
       ("smore-vs-gcbc", "smore-vs-iql", "crl-infonce-occupancy", "crl-nce-occupancy", "crl-control-vs-gcbc",
        "crl-control-vs-oracle"),
       note="tabular four-rooms port of smore_stable (official losses, Polyak 0.005, expectile 0.8): SMORe 0.284 "
            "vs GCBC 0.606 / IQL-style 0.404, not reproduced at this budget; the crl-* rows are the contrastive-RL "
            "critic (issue 17's anchor, the occupancy-ratio estimator family SMORe is compared with) on the same "
            "grid; no method or recipe yet"),
    _p(22, "video-rl-theory", "Towards Principled Representation Learning from Videos for Reinforcement Learning",
       "temporal-contrastive and forward-model objectives + noisy gridworld", "FULL", "not implemented",
       note="gridworld; no issue yet"),
    _p(23, "mc-videoqa-cl", "Self-Supervised Pre-training and Contrastive Representation Learning for "
       "Multiple-Choice Video QA", "auxiliary masked-answer contrastive loss", "PARTIAL", "partly implemented", 16,
       ("functional.mcvqa.mcvqa_contrastive_loss", "functional.mcvqa.mcvqa_loss", "functional.mcvqa.mask_tokens"),
       note="no official code found: built from the paper; no question-prediction pretext, aligned attention or "
            "video data offline"),
    _p(24, "directpred", "Understanding Self-Supervised Learning Dynamics without Contrastive Pairs",
       "predictor set in closed form from the feature correlation's eigen-decomposition", "FULL", "implemented", 6,
       ("nn.direct_predictor.DirectPredictor", "methods.directpred.DirectPred"), ("directpred",)),
    _p(25, "spark", "Self-Supervised Pre-Training with Contrastive and Masked Autoencoder Methods for Dealing "
       "with Small Datasets in Deep Learning for Medical Imaging",
       "SparK masked CNN pretraining + label-fraction protocol", "FULL", "implemented", 6,
       ("methods.spark.SparK", "eval.label_fractions.label_fraction_probe"),
       ("spark-1pct", "spark-10pct", "spark-100pct"), note="checked on Fashion-MNIST; the medical claim is not tested"),
    _p(26, "joint-image-volume", "Joint Self-Supervised Image-Volume Representation Learning with Intra-Inter "
       "Contrastive Clustering", "2D contrastive clustering + 3D cluster agreement + masked embedding prediction",
       "PARTIAL", "implemented", 6, ("functional.cluster_agreement.cluster_agreement_loss",
                                     "functional.cluster_agreement.masked_embedding_prediction_loss"),
       note="mixed 2D/3D medical corpora are not offline"),
    _p(27, "tera", "TERA: Self-Supervised Learning of Transformer Encoder Representation for Speech",
       "time/frequency/magnitude alteration + L1 reconstruction pretraining", "FULL", "partly implemented", 4,
       ("views.series.TeraTimeMask", "views.series.TeraChannelMask", "views.series.TeraMagnitudeNoise"),
       note="the alterations exist as series views; the reconstruction pretraining and its check do not"),
    _p(28, "obow", "OBoW: Online Bag-of-Visual-Words Generation for Self-Supervised Learning",
       "teacher bag-of-visual-words targets over an online vocabulary + dynamic predictor", "FULL",
       "implemented", 6, ("nn.bow.OnlineVocabulary", "methods.obow.OBoW"), ("obow",)),
    _p(29, "pairwise-mer", "Multimodal Emotion Recognition with Modality-Pairwise Unsupervised Contrastive Loss",
       "sum of pairwise cross-modal InfoNCE; fusion at inference", "FULL", "implemented", 16,
       ("methods.pairwise_mer.PairwiseMER", "nn.channel_groups.ChannelGroupTowers",
        "data.channel_groups.load_channel_groups", "functional.symile.pairwise_clip_loss"),
       ("pairwise_mer_vs_random", "pairwise_mer_vs_accelerometer", "pairwise_mer_vs_gyroscope",
        "pairwise_mer_single_vs_random", "pairwise_mer_vs_simclr"),
       note="BasicMotions sensor proxy, saturated (untrained towers 0.99 SVM): fused > single > random not "
            "reproduced; the official two-crop SupCon variant not copied"),
    _p(30, "neggrad-pft", "Preference Fine-Tuning of LLMs Should Leverage Suboptimal, On-Policy Data",
       "preference losses + on-policy pair sampler", "FULL", "partly implemented", 17,
       ("functional.preference.dpo_loss", "functional.preference.ipo_loss", "functional.preference.sft_loss",
        "rl.bandit.PreferenceBandit", "rl.bandit.train_tabular"),
       ("pft-dpo-closed-form", "pft-ipo-closed-form", "pft-sft-closed-form",
        "pft-on-policy-vs-offline-dpo", "pft-on-policy-vs-offline-ipo", "pft-on-policy-vs-offline-sft"),
       note="tabular 100-arm bandit, exact pi_ref, Bradley-Terry labels (official: deterministic); RWR, "
            "best-of-N, REINFORCE, PPO and negative-gradient variants not built"),
    _p(31, "unsupervised-pretraining-theory", "On the Provable Advantage of Unsupervised Pretraining",
       "theory (MLE + ERM)", "OUT", "out of scope", note="theory only"),
    _p(32, "debcse", "DebCSE: Rethinking Unsupervised Contrastive Sentence Embedding Learning in the Debiasing "
       "Perspective", "inverse-propensity weighted pair sampler", "PARTIAL", "implemented", 5,
       ("negatives.debiased.DebiasedPairSampler",)),
    _p(33, "cab-kws", "Contrastive Augmentation for Keyword Spotting",
       "speed/volume augmentation + bottleneck contrastive + reconstruction", "PARTIAL", "partly implemented", 4,
       ("views.series.Speed", "views.series.Volume"), note="the augmentations only; no speech commands offline"),
    _p(34, "dse", "Scalable Attentive Sentence-Pair Modeling via Distilled Sentence Embedding",
       "distillation loss (siamese student from a cross-attentive teacher)", "PARTIAL", "implemented", 5,
       ("functional.distillation.distillation_loss",)),
    _p(35, "jotr", "JOTR: 3D Joint Contrastive Learning with Transformers for Occluded Human Mesh Recovery",
       "dense joint-to-joint and joint-to-non-joint voxel InfoNCE", "PARTIAL", "implemented", 6,
       ("functional.joint_contrast.joint_to_joint_loss", "functional.joint_contrast.joint_to_nonjoint_loss"),
       note="3D human-mesh datasets and SMPL are not offline"),
    _p(36, "lightgcl", "LightGCL: Simple Yet Effective Graph Contrastive Learning for Recommendation",
       "SVD-view graph contrast for recommendation", "FULL", "implemented", 7,
       ("methods.recommendation.LightGCL",), benchmark="graph"),
    _p(37, "m3col", "Multimodal Mixup Contrastive Learning", "MixCo-style soft-target cross-modal InfoNCE",
       "FULL", "implemented", 16,
       ("functional.m3col.m3co_loss", "functional.m3col.soft_clip_loss", "functional.m3col.mixco_mix",
        "methods.m3col.M3CoL"), benchmark="multimodal",
       note="as a regulariser of CLIP on emoji (class and fusion heads do not apply to unseen names): level on "
            "retrieval, +0.008 zero-shot on 3 seeds, within CLIP's spread; the digits classification proxy not run"),
    _p(38, "taco", "TACO: Temporal Latent Action-Driven Contrastive Loss for Visual Reinforcement Learning",
       "state+action to future-state bilinear InfoNCE", "PARTIAL", "not implemented", note="no issue yet"),
    _p(39, "moe-sentsim", "Contrastive Learning and Mixture of Experts Enables Precise Vector Embeddings",
       "BERT feed-forward layers as routed experts + MNR loss", "FULL", "implemented", 5,
       ("nn.experts.add_routed_experts",)),
    _p(40, "halp", "HaLP: Hallucinating Latent Positives for Skeleton-based Self-Supervised Learning of Actions",
       "positive generator: prototype-directed slerp with closed-form hardness", "PARTIAL", "implemented", 6,
       ("negatives.halp.halp_positives",), note="skeleton datasets are not offline"),
    _p(41, "symile", "Contrasting with Symile: Simple Model-Agnostic Representation Learning for Unlimited "
       "Modalities", "multilinear inner-product loss + zero-shot scorer", "FULL", "implemented", 16,
       ("functional.symile.symile_loss", "functional.symile.pairwise_clip_loss",
        "functional.symile.symile_zero_shot_scores", "methods.symile.Symile", "methods.symile.PairwiseCLIP",
        "nn.tuple_towers.TupleTowers", "data.emoji_speech.load_emoji_speech", "eval.protocols.tuples.TupleProtocol"),
       benchmark="symile-emoji-speech",
       note="tri-modal emoji-speech (Symile-M3's construction): with the official heads Symile reaches 0.462 "
            "zero-shot top-1 at 4000 steps (seed 0), past the ~1/3 no pairwise score can pass; at the recipe's "
            "400 steps it loses to pairwise CLIP; XOR check in benchmarks/symile_xor.py"),
    _p(42, "contriever", "Unsupervised Dense Information Retrieval with Contrastive Learning",
       "independent cropping + MoCo queue + mean-pool encoder", "FULL", "implemented", 5,
       ("methods.contriever.Contriever",), benchmark="code_search"),
    _p(43, "ccp", "Contrastive Context Prediction for Multilingual Dense Retrieval",
       "context-window positives + language-specific memory bank + asymmetric projection", "PARTIAL",
       "implemented", 5, ("negatives.context.context_window_positives", "negatives.grouped_queue.GroupedQueue",
                          "nn.asymmetric.AsymmetricProjection")),
    _p(44, "dt4ier", "Decision Transformer for Immediate Feedback and Retention in Sequential Recommendation",
       "multi-reward decision transformer + action-embedding contrast", "PARTIAL", "not implemented",
       note="no issue yet"),
    _p(45, "game4loc", "Game4Loc: A UAV Geo-Localization Benchmark from Game Data",
       "IoU-weighted InfoNCE (per-sample label smoothing)", "PARTIAL", "implemented", 6,
       ("functional.weighted_infonce.weighted_info_nce",), note="GTA-UAV and a ViT are not offline"),
    _p(46, "biovil", "Making the Most of Text Semantics to Improve Biomedical Vision-Language Processing",
       "global image-text InfoNCE + MLM; section-matching text contrast", "PARTIAL", "partly implemented", 16,
       ("functional.biovil.biovil_global_loss", "functional.biovil.radiology_section_matching_loss",
        "functional.biovil.patch_phrase_similarity", "functional.biovil.similarity_map_to_image"),
       note="hi-ml ships no training losses: loss forms from the paper; grounding is inference-time; "
            "MIMIC-CXR is credentialed"),
    _p(47, "anatcl", "Anatomical Foundation Models for Brain MRIs",
       "metadata-kernel weighted contrastive loss", "PARTIAL", "implemented", 6,
       ("functional.kernel_contrast.kernel_weighted_info_nce",), note="brain MRI with FreeSurfer measures is not offline"),
    _p(48, "sepclr", "Separating Common from Salient Patterns with Contrastive Representation Learning",
       "common/salient align-uniform losses + information-less constraint + MI penalty", "FULL", "implemented", 6,
       ("functional.sepclr.sepclr_loss", "methods.sepclr.SepCLR"), ("sepclr",)),
    _p(49, "multicsr", "Large Language Models can Contrastively Refine their Generation for Better Sentence "
       "Representation Learning", "false-negative masking in SimCSE", "PARTIAL", "implemented", 5,
       ("negatives.false_negatives.false_negative_mask",)),
    _p(50, "coconut", "Continual Contrastive Spoken Language Understanding",
       "rehearsal-only SupCon + audio-text InfoNCE for class-incremental learning", "PARTIAL", "not implemented",
       note="no issue yet"),
    _p(51, "contrastive-search", "Contrastive Search Is What You Need for Neural Text Generation",
       "decoding procedure + isotropy metric", "FULL", "implemented", 5,
       ("eval.decoding.contrastive_search", "eval.generation_metrics.isotropy")),
    _p(52, "defsent-plus", "DefSent+: Improving Sentence Embeddings by Projecting Definition Sentences into a "
       "Quasi-Isotropic or Isotropic Vector Space of Unlimited Dictionary Entries",
       "definition-to-entry projection objective", "PARTIAL", "not implemented", note="no issue yet"),
    _p(53, "mclrec", "Meta-optimized Contrastive Learning for Sequential Recommendation",
       "learnable augmenters + meta-update + contrastive regulariser", "PARTIAL", "implemented", 7,
       ("nn.augmenters.MetaAugmenters", "functional.recommendation.mclrec_regularizer")),
    _p(54, "sbcl", "Subclass-balancing Contrastive Learning for Long-tailed Recognition",
       "balanced k-means subclass labels + bi-granularity SupCon", "FULL", "implemented", 6,
       ("negatives.subclasses.subclass_labels", "functional.sbcl.sbcl_loss", "methods.sbcl.SBCL"), ("sbcl",)),
    _p(55, "b-prop", "B-PROP: Bootstrapped Pre-training with Representative Words Prediction for Ad-hoc Retrieval",
       "contrastive term sampling from [CLS] attention + ROP loss", "PARTIAL", "not implemented",
       note="no issue yet"),
    _p(56, "s5", "Selective Structured State-Spaces for Long-Form Video Understanding",
       "token-selecting S4 + long-short masked contrastive pretraining", "PARTIAL", "not implemented",
       note="long-form video is not offline; no issue yet"),
    _p(57, "wscol", "Weak-to-Strong Contrastive Learning for Source-Free Domain-Adaptive Object Detection",
       "prototype-guided pseudo-label contrast for detectors", "OUT", "out of scope",
       note="too little public detail; needs detection data"),
    _p(58, "supremix", "Mixup Your Own Pairs: Supervised Contrastive Learning for Regression",
       "SupCon for regression + embedding-level mixup hard pairs + label-distance weights", "FULL", "implemented", 6,
       ("functional.supremix.supremix_loss",), ("supremix",)),
    _p(59, "beir-2cr", "Resources for Brewing BEIR: Reproducible Reference Models and an Official Leaderboard",
       "evaluation protocol (nDCG@10, R@100, trec_eval conventions)", "FULL", "implemented", 5,
       ("eval.retrieval.evaluate_run",), benchmark="code_search"),
)

_BY_NAME = {entry.name: entry for entry in PAPERS}


def paper_names() -> list[str]:
    """Short names of every seed paper, in the seed file's order."""
    return [entry.name for entry in PAPERS]


def paper(name: str) -> Paper:
    """The entry of one paper by its short name; unknown names raise ``ValueError``."""
    if name not in _BY_NAME:
        raise unknown_name_error("paper", name, _BY_NAME)
    return _BY_NAME[name]
