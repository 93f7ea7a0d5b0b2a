using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Tests.Noise;

/// <summary>X25519 against RFC 7748 section 6.1, and the checks a hostile remote key must meet.</summary>
public sealed class X25519Tests
{
    private const string AlicePrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    private const string AlicePublic = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    private const string BobPrivate = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    private const string BobPublic = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    private const string Shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

    [Fact]
    public void Rfc7748_key_pairs_and_shared_secret()
    {
        using var alice = X25519KeyPair.FromPrivateKey(Convert.FromHexString(AlicePrivate));
        using var bob = X25519KeyPair.FromPrivateKey(Convert.FromHexString(BobPrivate));
        Assert.Equal(AlicePublic, Convert.ToHexStringLower(alice.PublicKey));
        Assert.Equal(BobPublic, Convert.ToHexStringLower(bob.PublicKey));
        var ab = new byte[32];
        var ba = new byte[32];
        Assert.True(alice.TryAgree(bob.PublicKey, ab));
        Assert.True(bob.TryAgree(alice.PublicKey, ba));
        Assert.Equal(Shared, Convert.ToHexStringLower(ab));
        Assert.Equal(ab, ba);
    }

    [Fact]
    public void Low_order_points_and_wrong_lengths_are_refused()
    {
        using var key = X25519KeyPair.Generate();
        var secret = new byte[32];
        Assert.False(key.TryAgree(new byte[32], secret));                      // the all-zero point
        var one = new byte[32];
        one[0] = 1;
        Assert.False(key.TryAgree(one, secret));                                // order 1
        Assert.All(secret, b => Assert.Equal(0, b));
        Assert.False(key.TryAgree(new byte[31], secret));
        Assert.False(key.TryAgree(new byte[32], new byte[16]));
    }

    [Fact]
    public void Fresh_keys_differ_and_a_disposed_key_refuses_to_work()
    {
        var a = X25519KeyPair.Generate();
        using var b = X25519KeyPair.Generate();
        Assert.NotEqual(a.PublicKey, b.PublicKey);
        a.Dispose();
        Assert.Throws<ObjectDisposedException>(() => a.TryAgree(b.PublicKey, new byte[32]));
    }
}
