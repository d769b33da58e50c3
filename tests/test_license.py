"""The code's licence: MIT, named in setup.cfg so wheels and sdists carry it; the bundled data
keep their own licences, which the LICENSE file points to."""
import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_is_mit_and_named_in_setup_cfg():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the minigrad authors\n")
    assert "THE SOFTWARE IS PROVIDED \"AS IS\"" in text
    assert "minigrad/data/README.md" in text and "CC BY 4.0" in text and "Apache License 2.0" in text
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["license"] == "MIT"
    assert config["metadata"]["license_files"].split() == ["LICENSE"]


def test_the_data_readme_gives_each_file_its_licence():
    readme = (ROOT / "minigrad" / "data" / "README.md").read_text(encoding="utf-8")
    for name, licence in (("digits.csv.gz", "CC BY 4.0"), ("mnist1d.npz", "Apache License 2.0")):
        section = readme.split(f"## {name}")[1].split("\n## ")[0]
        assert licence in section, name
