"""Settings, built once at the edge and passed down (pipeline.runtime.config)."""


def test_settings_never_show_their_secrets(tmp_path):
    """Issue 21.6: Settings travel in every Dask task and end up in logs and tracebacks."""
    from pipeline.runtime.config import Settings, SignerSettings, WarehouseSettings

    wh = WarehouseSettings(endpoint="127.0.0.1:9000", access_key="sohoa", secret_key="s3-secret-value")
    signer = SignerSettings(url="http://127.0.0.1:8700", username="sohoa", password="signer-password", pin="135790")
    text = repr(Settings(home=tmp_path, warehouse=wh, signer=signer))
    for secret in ("s3-secret-value", "signer-password", "135790"):
        assert secret not in text
    assert "sohoa" in text and "127.0.0.1:9000" in text
