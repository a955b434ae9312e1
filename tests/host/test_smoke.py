from hostsite import PAN, PIN


async def test_sale_approved(site, signed_in):
    answer = await signed_in.sale(PAN, 1250, PIN)
    assert answer.rc == "00"
    assert site.balance() == 100_000 - 1250
