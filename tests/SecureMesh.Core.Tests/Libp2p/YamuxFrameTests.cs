using SecureMesh.Core.Libp2p.Yamux;

namespace SecureMesh.Core.Tests.Libp2p;

public class YamuxFrameTests
{
    public static TheoryData<YamuxFrameType, YamuxFlags> EveryTypeAndFlag()
    {
        var data = new TheoryData<YamuxFrameType, YamuxFlags>();
        foreach (var type in Enum.GetValues<YamuxFrameType>())
        {
            for (var flags = 0; flags < 16; flags++)
            {
                data.Add(type, (YamuxFlags)flags);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryTypeAndFlag))]
    public void Every_type_and_flag_combination_round_trips_big_endian(YamuxFrameType type, YamuxFlags flags)
    {
        var streamId = type is YamuxFrameType.Ping or YamuxFrameType.GoAway ? 0u : 0x01020304u;
        var header = new YamuxHeader(type, flags, streamId, 0xA1B2C3D4);
        var bytes = new byte[YamuxHeader.Size];
        header.Write(bytes);
        Assert.Equal(0, bytes[0]);
        Assert.Equal((byte)type, bytes[1]);
        Assert.Equal([0, (byte)flags], bytes[2..4]);
        Assert.Equal(streamId == 0 ? [0, 0, 0, 0] : new byte[] { 1, 2, 3, 4 }, bytes[4..8]);
        Assert.Equal([0xA1, 0xB2, 0xC3, 0xD4], bytes[8..12]);
        Assert.Equal(header, YamuxHeader.Read(bytes));
    }

    [Fact]
    public void Matches_the_spec_layout_of_a_window_update_opening_stream_1()
    {
        // Version 0, type 1, flags SYN, stream 1, delta 0x40000.
        var expected = Convert.FromHexString("000100010000000100040000");
        var bytes = new byte[12];
        new YamuxHeader(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0x40000).Write(bytes);
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("010000000000000100000000", "unsupported version 1")]
    [InlineData("000400000000000100000000", "unknown frame type 4")]
    [InlineData("00ff00000000000100000000", "unknown frame type 255")]
    [InlineData("000200010000000100000000", "Ping frame on stream 1")]
    [InlineData("000300000000000200000000", "GoAway frame on stream 2")]
    [InlineData("000000000000000000000001", "Data frame on the session ID 0")]
    [InlineData("000100010000000000000000", "WindowUpdate frame on the session ID 0")]
    public void Header_checks_refuse_with_a_protocol_error(string hex, string reason)
    {
        var e = Assert.Throws<SecureMeshException>(() => YamuxHeader.Read(Convert.FromHexString(hex)));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_flag_bits_are_ignored()
    {
        var header = YamuxHeader.Read(Convert.FromHexString("0001fff10000000100000000"));
        Assert.Equal(YamuxFlags.Syn, header.Flags);
    }
}

public class InboundIdWindowTests
{
    [Fact]
    public void Ids_in_order_are_each_accepted_once()
    {
        var window = new InboundIdWindow();
        for (uint id = 1; id < 2000; id += 2)
        {
            Assert.True(window.TryMark(id));
            Assert.False(window.TryMark(id));
        }
        Assert.Equal(1999u, window.Highest);
    }

    [Fact]
    public void Recent_lower_ids_are_accepted_once_and_old_ones_refused()
    {
        var window = new InboundIdWindow();
        Assert.True(window.TryMark(2));
        Assert.True(window.TryMark(2 + (2 * 300)));      // a jump: 2..600 were skipped
        Assert.True(window.TryMark(602 - 2));            // just below: recent, accepted
        Assert.False(window.TryMark(600));               // once
        Assert.True(window.TryMark(602 - (2 * 255)));    // the oldest remembered slot
        Assert.False(window.TryMark(602 - (2 * 256)));   // beyond memory: refused as possibly reused
        Assert.False(window.TryMark(2));                 // and the first ID too
    }

    [Fact]
    public void Shifts_across_word_boundaries_keep_the_right_bits()
    {
        var window = new InboundIdWindow();
        uint id = 1;
        var marked = new List<uint>();
        var random = new Random(5);
        for (var i = 0; i < 500; i++)
        {
            id += (uint)(2 * random.Next(1, 70));
            Assert.True(window.TryMark(id));
            marked.Add(id);
        }
        foreach (var old in marked.Where(m => (id - m) / 2 < InboundIdWindow.Span))
        {
            Assert.False(window.TryMark(old));
        }
        Assert.True(window.IsBeyondHighest(id + 2));
        Assert.False(window.IsBeyondHighest(id));
    }
}
