using System.Text.Json;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Tests.Noise;

public class CacophonyVectorTests
{
    private static readonly string VectorFile = Path.Combine(AppContext.BaseDirectory, "TestData", "cacophony-xx-25519-chachapoly-sha256.json");

    public static TheoryData<string> VectorNames()
    {
        var data = new TheoryData<string>();
        foreach (var v in Load())
        {
            data.Add(v.GetProperty("name").GetString()!);
        }
        return data;
    }

    private static List<JsonElement> Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(VectorFile));
        return [.. doc.RootElement.GetProperty("vectors").EnumerateArray()
            .Where(v => v.GetProperty("name").GetString() == HandshakeState.ProtocolName)
            .Select(v => v.Clone())];
    }

    [Fact]
    public void The_vector_file_holds_the_XX_entry()
    {
        Assert.NotEmpty(Load());
    }

    [Theory]
    [MemberData(nameof(VectorNames))]
    public void Every_message_matches_the_published_ciphertext(string name)
    {
        var v = Load().First(x => x.GetProperty("name").GetString() == name);
        byte[] Hex(string p) => Convert.FromHexString(v.GetProperty(p).GetString()!);

        using var initStatic = X25519KeyPair.FromPrivateKey(Hex("init_static"));
        using var respStatic = X25519KeyPair.FromPrivateKey(Hex("resp_static"));
        var initiator = new HandshakeState(true, Hex("init_prologue"), initStatic, X25519KeyPair.FromPrivateKey(Hex("init_ephemeral")));
        var responder = new HandshakeState(false, Hex("resp_prologue"), respStatic, X25519KeyPair.FromPrivateKey(Hex("resp_ephemeral")));
        TransportState? initT = null, respT = null;
        try
        {
            var messages = v.GetProperty("messages").EnumerateArray().ToList();
            Assert.True(messages.Count > 3);
            var buffer = new byte[65535];
            var plain = new byte[65535];
            for (var i = 0; i < messages.Count; i++)
            {
                var payload = Convert.FromHexString(messages[i].GetProperty("payload").GetString()!);
                var expected = Convert.FromHexString(messages[i].GetProperty("ciphertext").GetString()!);
                var initiatorSends = i % 2 == 0;
                int written, read;
                if (i < 3)
                {
                    var (sender, receiver) = initiatorSends ? (initiator, responder) : (responder, initiator);
                    written = sender.WriteMessage(payload, buffer);
                    Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(buffer, 0, written));
                    Assert.True(receiver.TryReadMessage(buffer.AsSpan(0, written), plain, out read));
                    if (i == 2)
                    {
                        Assert.Equal(Convert.ToHexString(initiator.HandshakeHash), Convert.ToHexString(responder.HandshakeHash));
                        Assert.Equal(respStatic.PublicKey, initiator.RemoteStaticPublicKey.ToArray());
                        Assert.Equal(initStatic.PublicKey, responder.RemoteStaticPublicKey.ToArray());
                        initT = initiator.Split();
                        respT = responder.Split();
                        Assert.Equal(initT.HandshakeHash, respT.HandshakeHash);
                    }
                }
                else
                {
                    var (sender, receiver) = initiatorSends ? (initT!, respT!) : (respT!, initT!);
                    written = sender.Encrypt(payload, buffer);
                    Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(buffer, 0, written));
                    Assert.True(receiver.TryDecrypt(buffer.AsSpan(0, written), plain, out read));
                }
                Assert.Equal(payload, plain.AsSpan(0, read).ToArray());
            }
        }
        finally
        {
            initiator.Dispose();
            responder.Dispose();
            initT?.Dispose();
            respT?.Dispose();
        }
    }
}
