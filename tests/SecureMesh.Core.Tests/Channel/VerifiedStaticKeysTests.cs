using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Tests.Channel;

/// <summary>
/// A peer's identity signature over its Noise static key is checked once per process and static key: a triple that
/// verified is remembered, and only exactly the same bytes are taken without checking again.
/// </summary>
public sealed class VerifiedStaticKeysTests
{
    [Fact]
    public void A_remembered_payload_is_accepted_again_and_any_change_to_it_is_checked_and_refused()
    {
        using var peer = NodeIdentity.Generate();
        using var staticKey = X25519KeyPair.Generate();
        var genuine = NoiseHandshakePayload.Create(peer, staticKey.PublicKey, []);
        var (first, _) = NoiseHandshake.VerifyPayload(genuine.Encode(), staticKey.PublicKey);
        Assert.Equal(peer.PeerId, first);
        Assert.Same(first, VerifiedStaticKeys.Find(staticKey.PublicKey, peer.PublicKey, genuine.IdentitySignature));
        var (again, _) = NoiseHandshake.VerifyPayload(genuine.Encode(), staticKey.PublicKey);
        Assert.Same(first, again);

        // The same static key and identity with one bit of the signature changed: checked, refused.
        var tampered = (byte[])genuine.IdentitySignature.Clone();
        tampered[10] ^= 0x01;
        AssertRefused(new NoiseHandshakePayload { IdentityKey = genuine.IdentityKey, IdentitySignature = tampered }, staticKey.PublicKey);

        // Another identity presenting the genuine signature over the same static key (it cannot sign it): refused.
        using var impostor = NodeIdentity.Generate();
        AssertRefused(new NoiseHandshakePayload { IdentityKey = impostor.PeerId.ProtobufPublicKey(), IdentitySignature = genuine.IdentitySignature }, staticKey.PublicKey);

        // The genuine identity and signature over another static key (a replayed payload): refused.
        using var otherStatic = X25519KeyPair.Generate();
        AssertRefused(genuine, otherStatic.PublicKey);

        // None of the refused ones was remembered.
        Assert.Null(VerifiedStaticKeys.Find(staticKey.PublicKey, peer.PublicKey, tampered));
        Assert.Null(VerifiedStaticKeys.Find(otherStatic.PublicKey, peer.PublicKey, genuine.IdentitySignature));
    }

    [Fact]
    public void The_memory_is_bounded_and_an_evicted_payload_is_simply_checked_again()
    {
        using var peer = NodeIdentity.Generate();
        var keys = Enumerable.Range(0, VerifiedStaticKeys.Slots * 3).Select(_ => X25519KeyPair.Generate()).ToList();
        try
        {
            var payloads = keys.Select(k => NoiseHandshakePayload.Create(peer, k.PublicKey, [])).ToList();
            for (var i = 0; i < keys.Count; i++)
            {
                Assert.Equal(peer.PeerId, NoiseHandshake.VerifyPayload(payloads[i].Encode(), keys[i].PublicKey).Peer);
            }
            var remembered = keys.Where((k, i) => VerifiedStaticKeys.Find(k.PublicKey, peer.PublicKey, payloads[i].IdentitySignature) is not null).Count();
            Assert.InRange(remembered, 1, VerifiedStaticKeys.Slots);
            for (var i = 0; i < keys.Count; i++)
            {
                Assert.Equal(peer.PeerId, NoiseHandshake.VerifyPayload(payloads[i].Encode(), keys[i].PublicKey).Peer);
            }
        }
        finally
        {
            keys.ForEach(k => k.Dispose());
        }
    }

    private static void AssertRefused(NoiseHandshakePayload payload, byte[] staticKey)
    {
        var e = Assert.Throws<SecureMeshException>(() => NoiseHandshake.VerifyPayload(payload.Encode(), staticKey));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }
}
