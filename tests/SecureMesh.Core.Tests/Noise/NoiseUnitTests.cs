using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Tests.Noise;

public class NoiseUnitTests
{
    private static (TransportState Initiator, TransportState Responder) Handshake()
    {
        using var a = X25519KeyPair.Generate();
        using var b = X25519KeyPair.Generate();
        using var i = new HandshakeState(true, a);
        using var r = new HandshakeState(false, b);
        var m = new byte[65535];
        var p = new byte[65535];
        foreach (var (w, rd) in new[] { (i, r), (r, i), (i, r) })
        {
            var n = w.WriteMessage("x"u8, m);
            Assert.True(rd.TryReadMessage(m.AsSpan(0, n), p, out var len));
            Assert.Equal("x"u8.ToArray(), p.AsSpan(0, len).ToArray());
        }
        return (i.Split(), r.Split());
    }

    [Fact]
    public void A_low_order_remote_key_fails_the_handshake_instead_of_giving_a_zero_secret()
    {
        using var a = X25519KeyPair.Generate();
        Assert.False(a.TryAgree(new byte[32], new byte[32]));

        using var b = X25519KeyPair.Generate();
        using var initiator = new HandshakeState(true, a);
        var m = new byte[65535];
        initiator.WriteMessage(default, m);
        // A message 2 whose ephemeral key is the all-zero point.
        var forged = new byte[200];
        Assert.False(initiator.TryReadMessage(forged, new byte[200], out _));
    }

    [Fact]
    public void Handshake_steps_out_of_order_are_refused()
    {
        using var a = X25519KeyPair.Generate();
        using var responder = new HandshakeState(false, a);
        Assert.Throws<InvalidOperationException>(() => responder.WriteMessage(default, new byte[100]));
        Assert.Throws<InvalidOperationException>(() => responder.Split());
        using var initiator = new HandshakeState(true, a);
        Assert.Throws<InvalidOperationException>(() => initiator.TryReadMessage(new byte[32], new byte[32], out _));
    }

    [Fact]
    public void A_failed_read_kills_the_handshake()
    {
        using var a = X25519KeyPair.Generate();
        using var responder = new HandshakeState(false, a);
        Assert.False(responder.TryReadMessage(new byte[10], new byte[10], out _));
        Assert.Throws<InvalidOperationException>(() => responder.WriteMessage(default, new byte[200]));
    }

    [Fact]
    public void Split_wipes_the_handshake_and_transport_keys_work_both_ways()
    {
        var (i, r) = Handshake();
        using (i)
        using (r)
        {
            Assert.Equal(i.HandshakeHash, r.HandshakeHash);
            var ct = new byte[100];
            var pt = new byte[100];
            var n = i.Encrypt("hello"u8, ct);
            Assert.True(r.TryDecrypt(ct.AsSpan(0, n), pt, out var len));
            Assert.Equal("hello"u8.ToArray(), pt.AsSpan(0, len).ToArray());
            // A replayed frame fails: the receiver's nonce has moved on.
            Assert.False(r.TryDecrypt(ct.AsSpan(0, n), pt, out _));
        }
    }

    [Fact]
    public void A_direction_refuses_to_send_past_the_nonce_limit()
    {
        var (i, r) = Handshake();
        using (i)
        using (r)
        {
            i.SendCipher.SetNonceForTest(TransportState.NonceLimit - 1);
            var ct = new byte[100];
            i.Encrypt("last"u8, ct);
            var e = Assert.Throws<SecureMeshException>(() => i.Encrypt("one more"u8, ct));
            Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
            r.ReceiveCipher.SetNonceForTest(TransportState.NonceLimit);
            Assert.False(r.TryDecrypt(ct.AsSpan(0, 20), new byte[100], out _));
        }
    }

    [Fact]
    public void Rekey_on_both_sides_keeps_them_in_step()
    {
        var (i, r) = Handshake();
        using (i)
        using (r)
        {
            i.SendCipher.Rekey();
            r.ReceiveCipher.Rekey();
            var ct = new byte[100];
            var n = i.Encrypt("after rekey"u8, ct);
            Assert.True(r.TryDecrypt(ct.AsSpan(0, n), new byte[100], out _));
        }
    }

    [Fact]
    public void Payload_round_trips_and_verifies()
    {
        using var id = NodeIdentity.Generate();
        using var key = X25519KeyPair.Generate();
        var bytes = NoiseHandshakePayload.Create(id, key.PublicKey, ["/yamux/1.0.0", "/other/2"]).Encode();
        var (peer, protocols) = NoiseHandshake.VerifyPayload(bytes, key.PublicKey);
        Assert.Equal(id.PeerId, peer);
        Assert.Equal(["/yamux/1.0.0", "/other/2"], protocols);
        using var other = X25519KeyPair.Generate();
        var e = Assert.Throws<SecureMeshException>(() => NoiseHandshake.VerifyPayload(bytes, other.PublicKey));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public void Unknown_fields_of_every_wire_type_are_skipped()
    {
        using var id = NodeIdentity.Generate();
        using var key = X25519KeyPair.Generate();
        var known = NoiseHandshakePayload.Create(id, key.PublicKey, []).Encode();
        byte[] unknown =
        [
            0x18, 0x96, 0x01,                          // field 3 varint
            0x29, 1, 2, 3, 4, 5, 6, 7, 8,              // field 5 fixed64
            0x32, 0x03, 9, 9, 9,                       // field 6 bytes
            0x3D, 1, 2, 3, 4,                          // field 7 fixed32
        ];
        var parsed = NoiseHandshakePayload.Decode([.. unknown, .. known, .. unknown]);
        Assert.Equal(PeerId.EncodeProtobufPublicKey(id.PublicKey), parsed.IdentityKey);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0a")]                 // tag, no length
    [InlineData("0a05010203")]         // length past the end
    [InlineData("0aff")]               // truncated varint length
    [InlineData("0affffffffffffffffff01")] // 64-bit+ length
    [InlineData("0b")]                 // group start (unsupported)
    [InlineData("00")]                 // field number 0
    [InlineData("0a00")]               // identity key but no signature
    [InlineData("0a0012002203120180")] // invalid UTF-8 protocol name
    public void Malformed_payloads_fail_with_a_protocol_error(string hex)
    {
        var e = Assert.Throws<SecureMeshException>(() => NoiseHandshakePayload.Decode(Convert.FromHexString(hex)));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public void Random_and_mutated_payloads_never_throw_anything_but_a_protocol_error()
    {
        using var id = NodeIdentity.Generate();
        using var key = X25519KeyPair.Generate();
        var valid = NoiseHandshakePayload.Create(id, key.PublicKey, ["/yamux/1.0.0"]).Encode();
        var random = new Random(12345);
        for (var i = 0; i < 20000; i++)
        {
            byte[] input;
            if (i % 2 == 0)
            {
                input = new byte[random.Next(0, 200)];
                random.NextBytes(input);
            }
            else
            {
                input = (byte[])valid.Clone();
                for (var k = random.Next(1, 4); k > 0; k--)
                {
                    input[random.Next(input.Length)] = (byte)random.Next(256);
                }
                input = input[..random.Next(input.Length + 1)];
            }
            try
            {
                NoiseHandshake.VerifyPayload(input, key.PublicKey);
            }
            catch (SecureMeshException e)
            {
                Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
            }
        }
    }

    [Fact]
    public void Short_auth_string_is_five_known_words_and_depends_on_the_hash()
    {
        var hash = new byte[32];
        var a = ShortAuthString.From(hash);
        Assert.Equal(a, ShortAuthString.From((byte[])hash.Clone()));
        Assert.Equal(ShortAuthString.WordCount, a.Split(' ').Length);
        hash[31] = 1;
        Assert.NotEqual(a, ShortAuthString.From(hash));
        Assert.Throws<ArgumentException>(() => ShortAuthString.From(new byte[31]));
    }
}
