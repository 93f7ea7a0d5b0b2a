using SecureMesh.Core;
using SecureMesh.Core.Libp2p.AutoNat;

namespace SecureMesh.Node.Tests.AutoNat;

/// <summary>AutoNAT v2's protobuf messages: round trips, and hostile bytes refused with the project's protocol error.</summary>
public sealed class AutoNatMessagesTests
{
    public static TheoryData<AutoNatMessage> Messages => new()
    {
        new DialRequest([[4, 127, 0, 0, 1, 6, 0x12, 0x8b], [1, 2, 3]], 0x0123456789abcdef),
        new DialResponse(ResponseStatus.Ok, 1, DialStatus.Ok),
        new DialResponse(ResponseStatus.DialRefused, 0, DialStatus.Unused),
        new DialDataRequest(2, 30_000),
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public void Messages_round_trip(AutoNatMessage message)
    {
        var decoded = AutoNatMessages.Decode(AutoNatMessages.Encode(message));
        if (message is DialRequest request)
        {
            var back = Assert.IsType<DialRequest>(decoded);
            Assert.Equal(request.Nonce, back.Nonce);
            Assert.Equal(request.Addrs, back.Addrs);
        }
        else
        {
            Assert.Equal(message, decoded);
        }
    }

    [Fact]
    public void The_wire_form_follows_the_spec()
    {
        // Message{dialRequest(1){addrs(1)=[0x04], nonce(2) fixed64 = 1}}
        var bytes = AutoNatMessages.Encode(new DialRequest([[0x04]], 1));
        Assert.Equal(Convert.FromHexString("0a0c0a010411" + "0100000000000000"), bytes);
        Assert.Equal(1ul, AutoNatMessages.DecodeDialBack(AutoNatMessages.EncodeDialBack(1)));
        Assert.Equal(Convert.FromHexString("090100000000000000"), AutoNatMessages.EncodeDialBack(1));
        Assert.Empty(AutoNatMessages.EncodeDialBackResponse());
        Assert.Equal(4096, Assert.IsType<DialDataResponse>(AutoNatMessages.Decode(AutoNatMessages.Encode(new DialDataResponse(4096)))).DataLength);
    }

    [Theory]
    [InlineData("")]
    [InlineData("ff")]
    [InlineData("0aff")]
    [InlineData("0a0511")]
    [InlineData("0f")]
    public void Garbage_is_a_protocol_error(string hex)
    {
        var e = Assert.Throws<SecureMeshException>(() => AutoNatMessages.Decode(Convert.FromHexString(hex)));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public void Oversized_messages_too_many_addresses_and_too_much_data_are_refused()
    {
        Assert.Throws<SecureMeshException>(() => AutoNatMessages.Decode(new byte[AutoNatMessages.MaxMessageSize + 1]));
        var many = AutoNatMessages.Encode(new DialRequest([.. Enumerable.Range(0, AutoNatMessages.MaxAddrs + 1).Select(_ => new byte[] { 4 })], 1));
        Assert.Contains("more than", Assert.Throws<SecureMeshException>(() => AutoNatMessages.Decode(many)).Message, StringComparison.Ordinal);
        // A DialDataResponse with 4097 bytes of data, built by hand.
        var body = new List<byte> { 0x0a, 0x81, 0x20 };
        body.AddRange(new byte[4097]);
        var outer = new List<byte> { 0x22, 0x84, 0x20 };
        outer.AddRange(body);
        Assert.Throws<SecureMeshException>(() => AutoNatMessages.Decode([.. outer]));
        Assert.Throws<SecureMeshException>(() => AutoNatMessages.DecodeDialBack([0x08, 0x01]));
    }
}
