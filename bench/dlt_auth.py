"""Our request signing as a dlt custom auth (dlt's REST client takes an ``AuthConfigBase``)."""

from dlt.common.configuration import configspec
from dlt.common.typing import TSecretStrValue
from dlt.sources.helpers.rest_client.auth import AuthConfigBase

from xport_etl.extract.auth import XportAuth


@configspec
class XportDltAuth(AuthConfigBase):
    """The five signed headers of ``xport_etl.extract.auth`` (``sign``), fresh on every request and retry."""

    access_key: str = None
    secret: TSecretStrValue = None
    user_id: str = None

    def __call__(self, request):
        request.headers.update(XportAuth(self.access_key, self.secret, self.user_id).headers())
        return request
