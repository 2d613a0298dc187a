"""The form a fan fills in to apply: every rule a fan can break, in Chinese."""

from __future__ import annotations

import re
import unicodedata

from django import forms

# A mainland mobile number: 11 digits starting with 1.
MOBILE = re.compile(r"1[0-9]{10}")
# What people type around the digits: spaces, hyphens, the country code.
PHONE_SEPARATORS = re.compile(r"[\s\-]+")
COUNTRY_CODE = re.compile(r"^(?:\+86|0086)")
# WeChat's media ids are opaque; these are the characters seen in them.
MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class MultilineField(forms.CharField):
    """A CharField whose line breaks count as one character each."""

    def to_python(self, value):
        # Browsers send a textarea's line breaks as CRLF but count them as one
        # character against maxlength: count them the browser's way.
        return super().to_python(value).replace("\r\n", "\n")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """The files of one ``<input type="file" multiple>``, as a list."""

    def __init__(self, **kwargs):
        super().__init__(widget=MultipleFileInput(attrs={"accept": "image/*"}), **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(PhotosField, self).clean(file, initial) for file in files]


class MediaIdsField(forms.Field):
    """The repeated ``media_id`` values: WeChat's serverIds from uploadImage."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        return [item for item in value or [] if item]

    def validate(self, value):
        super().validate(value)
        if not all(MEDIA_ID.fullmatch(item) for item in value):
            raise forms.ValidationError(
                "微信照片的标识无效，请重新选择照片", code="invalid_media_id"
            )


class ApplicationForm(forms.Form):
    name = forms.CharField(
        label="姓名",
        max_length=50,
        error_messages={
            "required": "请填写姓名",
            "max_length": "姓名最多 %(limit_value)d 个字（现在 %(show_value)d 个）",
        },
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    phone = forms.CharField(
        label="手机号",
        error_messages={"required": "请填写手机号"},
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    note = MultilineField(
        label="备注",
        required=False,
        max_length=500,
        error_messages={"max_length": "备注最多 %(limit_value)d 个字（现在 %(show_value)d 个）"},
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "选填"}),
    )

    photos = PhotosField(label="照片", required=False)
    media_id = MediaIdsField(required=False)

    def __init__(self, *args, photo_limit: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.photo_limit = photo_limit

    def clean(self):
        cleaned_data = super().clean()
        count = len(cleaned_data.get("photos") or []) + len(cleaned_data.get("media_id") or [])
        if count > self.photo_limit:
            self.add_error("photos", f"最多还能添加 {self.photo_limit} 张照片（选了 {count} 张）")
        return cleaned_data

    def clean_phone(self) -> str:
        """Return the 11 digits of a mainland mobile number, however it was typed."""
        # Input methods in full-width mode type "１３８" and "＋８６": NFKC makes
        # them ASCII.
        typed = unicodedata.normalize("NFKC", self.cleaned_data["phone"])
        digits = COUNTRY_CODE.sub("", PHONE_SEPARATORS.sub("", typed))
        if not MOBILE.fullmatch(digits):
            raise forms.ValidationError(
                "请填写 11 位手机号，例如 138 1234 5678", code="invalid_phone"
            )
        return digits
