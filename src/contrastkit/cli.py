"""Command line: ``contrastkit train | eval | embed | search | export | list | data``.

``contrastkit train`` with no argument runs the main job (SimCLR on Fashion-MNIST)
and prints the run directory's path as its last line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

# Plain click help (no rich panels): rich's formatter labels every switch "<bool>", as if it took a value.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Contrastive representation learning.")

#: What a command reports as one ``error:`` line (rc 2) instead of a traceback: bad input
#: (ValueError, including the config schema's errors), a diverged run (FloatingPointError) and
#: the environment (OSError: a missing file, a full disk, a read-only folder, no network).
USER_ERRORS = (ValueError, OSError, FloatingPointError)


def _message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and not isinstance(error, FileNotFoundError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return " ".join(str(error).split()) or type(error).__name__  # one line, whatever the message held


def _fail(error: BaseException) -> None:
    typer.echo(f"error: {_message(error)}", err=True)
    raise typer.Exit(code=2)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"contrastkit {version('contrastkit')}")
        except PackageNotFoundError:
            typer.echo("contrastkit (not installed as a package)")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Show the version and exit."),
) -> None:
    """Contrastive representation learning."""


@app.command()
def train(
    recipe: Optional[str] = typer.Argument(None, help="Recipe name (see `contrastkit list`) or a YAML file."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a value: --set train.lr=0.01 (repeatable); "
                                   "with --resume only train.steps, train.epochs and other schedule-free keys."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the run "
                                           "(default runs/METHOD-DATA-TIME)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory "
                                          "(--set train.steps=N extends a finished one)."),
) -> None:
    """Train a recipe, evaluate it against baselines, and write a run directory."""
    from contrastkit.train.config import RESUMABLE_TRAIN_KEYS, load_config, load_run_config
    from contrastkit.train.run import run
    from contrastkit.train.trainer import Preempted

    try:
        if resume is not None:
            if recipe is not None:
                raise ValueError("--resume continues a run with its saved config; drop the recipe")
            config = load_run_config(resume, set_, allowed=tuple(f"train.{key}" for key in RESUMABLE_TRAIN_KEYS))
            directory, _ = run(config, resume, resume=True)
        else:
            config = load_config(recipe, set_)
            directory, _ = run(config, run_dir)
    except Preempted as stopped:
        typer.echo(str(stopped), err=True)
        raise typer.Exit(code=143) from None  # 128 + SIGTERM, as a shell reports a terminated job
    except USER_ERRORS as error:
        _fail(error)
        return
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line from rank 0 only
        typer.echo(str(directory))


@app.command("eval")
def evaluate(
    run_dir: Optional[Path] = typer.Argument(None, help="A run directory written by `contrastkit train`; "
                                             "omit it to evaluate a recipe's untrained encoder."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Without RUN_DIR: the recipe whose encoder and "
                                         "data to evaluate (default: code-search)."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a value, e.g. --set data=beir:PATH "
                                   "(repeatable); with RUN_DIR only eval.* keys, e.g. --set eval.knn_k=20."),
    out: Optional[Path] = typer.Option(None, "--out", help="Without RUN_DIR: where to write metrics.json "
                                       "(default runs/eval-NAME-TIME)."),
) -> None:
    """Re-evaluate a run's latest checkpoint, or an untrained encoder, and write metrics.json.

    Image and series runs get kNN and linear-probe accuracy; text runs get retrieval
    metrics (trec_eval MRR@10, nDCG@10, Recall@100, MAP) with BM25 as a baseline.
    """
    from contrastkit.train.config import load_config
    from contrastkit.train.run import _new_run_dir, evaluate_run, evaluate_untrained

    try:
        if run_dir is not None:
            if recipe is not None or out is not None:
                raise ValueError("a run is re-evaluated with its saved config; drop --recipe and --out")
            evaluate_run(run_dir, set_)
            return
        config = load_config(recipe or "code-search", set_)
        directory = out or _new_run_dir(f"eval-{config['name']}")
        evaluate_untrained(config, directory)
    except USER_ERRORS as error:
        _fail(error)
        return
    typer.echo(str(directory))


@app.command("embed")
def embed(
    source: str = typer.Argument(..., metavar="RUN_DIR|CORPUS",
                                 help="A run directory (holds config.yaml): embed its data with its newest "
                                 "checkpoint. Or a corpus file (.jsonl with _id/text, BEIR's corpus.jsonl, or plain "
                                 "text, one document per line) or data:NAME for a text dataset's test corpus."),
    out: Path = typer.Option(..., "--out", "-o", help="The embedding folder to write."),
    split: Optional[str] = typer.Option(None, "--split", help="With RUN_DIR: test (default), train or all."),
    output_format: str = typer.Option("numpy", "--format", help="With RUN_DIR: numpy, or tensorboard for the "
                                      "TensorBoard projector files as well."),
    set_: list[str] = typer.Option([], "--set", "-s", help="With RUN_DIR: eval.* overrides, e.g. "
                                   "--set eval.batch_size=256 (repeatable)."),
    run: Optional[Path] = typer.Option(None, "--run", help="With CORPUS: encode with this trained text run's encoder."),
    model: Optional[str] = typer.Option(None, "--model", help="With CORPUS: or a local model directory "
                                        "(default: the packaged all-MiniLM-L6-v2)."),
    pooling: str = typer.Option("mean", "--pooling", help="With --model: mean or cls."),
    max_length: int = typer.Option(256, "--max-length", help="With --model: tokens per document."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="With CORPUS: texts per forward pass "
                                             "(default 64)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing embedding folder."),
) -> None:
    """Write embeddings to OUT: a run's (every kind of data), or a corpus's (text).

    RUN_DIR writes OUT/embeddings.npy, ids.json, labels.npy and manifest.json (one sub-folder
    per table where the data has several, e.g. users and items); CORPUS writes
    OUT/embeddings.npy + ids.json (+ the texts and a manifest). See docs/embed.md.
    """
    from contrastkit.train.embed_run import embed_run, is_run_dir

    try:
        if is_run_dir(source):
            if run is not None or model is not None or batch_size is not None:
                raise ValueError(f"{source} is a run directory: it embeds with its own model; --run, --model and "
                                 "--batch-size are for a corpus (use --set eval.batch_size=N)")
            directory = embed_run(source, out, split=split or "test", output_format=output_format,
                                  overwrite=overwrite, overrides=set_)
        else:
            if split is not None or output_format != "numpy" or set_:
                raise ValueError(f"--split, --format and --set apply to a run directory; {source} is not one "
                                 "(no config.yaml)")
            directory = _embed_corpus(source, out, run=run, model=model, pooling=pooling, max_length=max_length,
                                      batch_size=64 if batch_size is None else batch_size, overwrite=overwrite)
    except USER_ERRORS as error:
        _fail(error)
        return
    typer.echo(str(directory))


def _embed_corpus(corpus: str, out: Path, *, run: Optional[Path], model: Optional[str], pooling: str,
                  max_length: int, batch_size: int, overwrite: bool) -> Path:
    """The corpus form of ``embed`` (text only), unchanged since before runs could be embedded."""
    from contrastkit.train.embed import embed_corpus, load_text_encoder

    if corpus.startswith("data:"):
        from contrastkit.data import load_dataset

        task = load_dataset(corpus[len("data:"):]).test
        documents = getattr(task, "corpus", None)
        if documents is None:
            raise ValueError(f"{corpus}: expected a text dataset with a retrieval corpus")
    else:
        from contrastkit.data.corpus import read_corpus

        documents = read_corpus(corpus)
    options = None if run is not None else {"pooling": pooling, "max_length": max_length}
    encoder, source = load_text_encoder(run_dir=run, model=model, options=options)
    source["corpus"] = corpus
    return embed_corpus(documents, out, encoder, source, batch_size=batch_size, overwrite=overwrite)


@app.command("search")
def search(
    directory: Path = typer.Argument(..., help="An embedding folder written by `contrastkit embed` "
                                     "(or one table's sub-folder)."),
    queries: Optional[list[str]] = typer.Argument(None, help="Query texts (for folders whose encoder encodes text)."),
    row_id: Optional[str] = typer.Option(None, "--id", help="Instead of texts: the neighbours of this stored row."),
    table: Optional[str] = typer.Option(None, "--table", help="The table to search in a folder of several "
                                        "(default: the first, e.g. corpus, images, users)."),
    from_table: Optional[str] = typer.Option(None, "--from", help="With --id: the table holding that row "
                                             "(default: --table), e.g. --table items --from users."),
    k: int = typer.Option(10, "-k", help="Hits per query."),
    index: str = typer.Option("flat", "--index", help="faiss index: flat (exact), hnsw or ivf (approximate)."),
    width: int = typer.Option(100, "--width", help="Characters of each hit's text to show (0: none)."),
) -> None:
    """Nearest rows of an embedding folder (faiss): for query texts, or for a stored row (--id).

    Each hit prints its rank, score (cosine, or the dot product for recommendation), id,
    label in brackets where the rows have labels, and text where they are texts.
    """
    from contrastkit.train.embed_run import search_folder

    try:
        results = search_folder(directory, list(queries or []), row_id=row_id, table=table, from_table=from_table,
                                k=k, kind=index)
    except USER_ERRORS as error:
        _fail(error)
        return
    for asked, hits in results:
        typer.echo(f"query: {asked}")
        for rank, (hit_id, score, label, text) in enumerate(hits, start=1):
            snippet = " ".join(text.split())[:width] if width > 0 else ""
            typer.echo(f"  {rank:>3}  {score:.4f}  {hit_id}" + (f"  [{label}]" if label is not None else "")
                       + (f"  {snippet}" if snippet else ""))


@app.command("export")
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `contrastkit train`."),
    output_format: str = typer.Option(..., "--format", help="sentence-transformers (text runs: a folder "
                                      "SentenceTransformer(DIR) loads) or safetensors (any run: weights + "
                                      "encoder.json for contrastkit.load_encoder(DIR))."),
    out: Path = typer.Option(..., "--out", "-o", help="The folder to write (absent or empty, unless --force)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing non-empty --out."),
) -> None:
    """Export a run's trained encoder (newest intact checkpoint) as a folder other tools load.

    The folder appears complete or not at all. See docs/export.md.
    """
    from contrastkit.train.export import export_run

    try:
        directory = export_run(run_dir, out, output_format=output_format, force=force)
    except USER_ERRORS as error:
        _fail(error)
        return
    typer.echo(str(directory))


data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="Build the datasets that are made from files on this machine.")
app.add_typer(data_app, name="data")


@data_app.command("build-debian-packages")
def build_debian_packages(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for debian-packages.npz and its manifest."),
    lists_dir: Path = typer.Option(Path("/var/lib/apt/lists"), "--lists-dir",
                                   help="Where `apt-get update` left the package index."),
) -> None:
    """Rebuild the debian-packages graph snapshot from this machine's live apt index.

    Use it with `--set data.data_dir=OUT` on the debian-packages and debian-tags datasets.
    """
    from contrastkit.data.debian_packages_build import rebuild_from_apt

    try:
        path = rebuild_from_apt(out, lists_dir)
    except USER_ERRORS as error:
        _fail(error)
        return
    typer.echo(str(path))


@app.command("list")
def list_registered(
    papers: bool = typer.Option(False, "--papers", help="list the seed papers: verdict, status, component, check"),
) -> None:
    """List the registered methods, datasets, encoders, view presets and recipes (or the seed papers)."""
    if papers:
        from contrastkit.catalog import papers_table

        typer.echo(papers_table())
        return
    from contrastkit.data import dataset_descriptions
    from contrastkit.modalities import MODALITIES, methods_for
    from contrastkit.nn.registry import encoder_names
    from contrastkit.recipes import recipe_names

    kinds = list(MODALITIES.values())  # the modalities, in registration order
    typer.echo("methods:      " + "; ".join(f"{kind.name}: {', '.join(methods_for(kind))}" for kind in kinds))
    typer.echo("encoders:     " + ", ".join(encoder_names()))
    typer.echo("view presets: " + "; ".join(
        f"{kind.name}: {', '.join(presets)}" for kind in kinds if (presets := kind.view_presets())
    ))  # fmt: skip
    typer.echo("recipes:      " + ", ".join(recipe_names()))
    typer.echo("datasets:")
    descriptions = dataset_descriptions()
    width = max(map(len, descriptions), default=0)
    for name, description in descriptions.items():
        typer.echo(f"  {name:<{width}}  {description}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="contrastkit")


if __name__ == "__main__":
    sys.exit(main())
