from koala import Koala


def test_class_attributes_match_the_original() -> None:
    assert Koala.url == "https://koala.sh"
    assert Koala.api_endpoint == "https://koala.sh/api/gpt/"
    assert Koala.working is False
    assert Koala.supports_message_history is True
    assert Koala.default_model == "gpt-4o-mini"
