using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using SecureMesh.Node.Control;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests;

/// <summary>
/// The control API's JSON, pinned byte for byte: every request and answer record as the client writes and reads it
/// (<see cref="NodeControl.Json"/>) and as the server writes and reads it (through its HTTP pipeline, over the socket),
/// the real endpoints' answers against the reflection serializer the API used until session 9, and the error bodies.
/// The expected strings were taken from the code before the control API moved to source-generated JSON only.
/// </summary>
public sealed class ControlWireFormatTests
{
    private static readonly Dictionary<string, string> Pinned = new(StringComparer.Ordinal)
    {
        ["ConnectionInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","direction":"inbound","since":"2026-12-04T01:02:03.456+00:00","bytesSent":123456789012,"bytesReceived":42,"sas":"alpha bravo charlie","remote":"127.0.0.1:4001","path":"relayed","relay":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}""",
        ["ConnectionInfo.defaults"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"direction":"outbound","since":"2026-12-04T03:04:05.1234567+02:00","bytesSent":0,"bytesReceived":0,"sas":"sas","remote":null,"path":"direct","relay":null}""",
        ["PingRequest"] = """{"address":"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","count":3}""",
        ["PingResult"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","address":"/ip4/127.0.0.1/tcp/4001","rttMs":[0.1,1.5,1E-07,123456.789,3]}""",
        ["TransferInfo"] = """{"id":"t1","contentId":"b3:abc","name":null,"direction":"download","state":"running","bytesDone":10,"bytesTotal":20,"peers":3}""",
        ["NodeStatus"] = """{"running":true,"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","fingerprint":"AB:CD:EF","listen":["127.0.0.1:4001","[::1]:4001"],"discovery":"on","connections":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","direction":"inbound","since":"2026-12-04T01:02:03.456+00:00","bytesSent":123456789012,"bytesReceived":42,"sas":"alpha bravo charlie","remote":"127.0.0.1:4001","path":"relayed","relay":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}],"transfers":[{"id":"t1","contentId":"b3:abc","name":null,"direction":"download","state":"running","bytesDone":10,"bytesTotal":20,"peers":3}],"handshakes":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"sas":"delta echo","time":"2026-12-04T03:04:05.1234567+02:00","direction":"outbound","ended":"refused"}],"refusingUs":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"bob","lastRefusal":"2026-12-04T01:02:03.456+00:00","refusals":7,"nextAttempt":"2026-12-04T03:04:05.1234567+02:00"}],"reachability":[{"address":"/ip4/127.0.0.1/tcp/4001","state":"reachable","source":"listen","advertised":true,"checked":null}],"portMapping":"upnp"}""",
        ["NodeStatus.offline"] = """{"running":false,"peerId":null,"fingerprint":null,"listen":[],"discovery":"off","connections":[],"transfers":[],"handshakes":null,"refusingUs":null,"reachability":null,"portMapping":null}""",
        ["ReachabilityInfo"] = """{"address":"/ip4/127.0.0.1/tcp/4001","state":"reachable","source":"listen","advertised":true,"checked":null}""",
        ["HandshakeInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"sas":"delta echo","time":"2026-12-04T03:04:05.1234567+02:00","direction":"outbound","ended":"refused"}""",
        ["RefusalInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"bob","lastRefusal":"2026-12-04T01:02:03.456+00:00","refusals":7,"nextAttempt":"2026-12-04T03:04:05.1234567+02:00"}""",
        ["PeerInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","state":"blocked","addresses":["/ip4/10.0.0.1/tcp/1","host.example:4001"],"fingerprint":"AB:CD","firstSeen":"2026-12-04T01:02:03.456+00:00","lastSeen":"2026-12-04T03:04:05.1234567+02:00","blockReason":"why","connected":true,"refusingUs":true,"refusedAt":"2026-12-04T03:04:05.1234567+02:00"}""",
        ["PeerInfo.defaults"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"state":"pending","addresses":[],"fingerprint":"AB:CD","firstSeen":null,"lastSeen":null,"blockReason":null,"connected":false,"refusingUs":false,"refusedAt":null}""",
        ["PeerActionResult"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","fingerprint":"AB:CD","changed":true}""",
        ["AddPeerRequest"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","addresses":["/ip4/10.0.0.1/tcp/1"],"name":"bob","trust":true}""",
        ["AddPeerRequest.nulls"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","addresses":null,"name":null,"trust":false}""",
        ["BlockRequest"] = """{"value":"10.0.0.0/8","reason":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9"}""",
        ["BlockRequest.nulls"] = """{"value":null,"reason":null}""",
        ["RenameRequest"] = """{"name":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9"}""",
        ["BlockedPeerInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"reason":"spam","time":"2026-12-04T01:02:03.456+00:00"}""",
        ["BlockedAddressInfo"] = """{"cidr":"10.0.0.0/8","reason":null,"time":"2026-12-04T03:04:05.1234567+02:00"}""",
        ["BlockedContentInfo"] = """{"contentId":"b3:def","reason":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","time":"2026-12-04T01:02:03.456+00:00"}""",
        ["BlocklistInfo"] = """{"peers":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"reason":"spam","time":"2026-12-04T01:02:03.456+00:00"}],"addresses":[{"cidr":"10.0.0.0/8","reason":null,"time":"2026-12-04T03:04:05.1234567+02:00"}],"content":[{"contentId":"b3:def","reason":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","time":"2026-12-04T01:02:03.456+00:00"}]}""",
        ["SettingInfo"] = """{"key":"discovery","value":"on","isDefault":false,"description":"LAN beacons \u003Con|off\u003E"}""",
        ["ConfigValue"] = """{"key":"listen","value":"0.0.0.0:4001"}""",
        ["ConfigSetRequest"] = """{"value":"off"}""",
        ["ConfigSetResult"] = """{"key":"listen","value":"127.0.0.1:5555","applied":"restart","note":"takes effect after a restart"}""",
        ["ConfigSetResult.nulls"] = """{"key":"discovery","value":"on","applied":"now","note":null}""",
        ["LogEntryInfo"] = """{"seq":9223372036854775807,"time":"2026-12-04T03:04:05.1234567+02:00","event":"peer.trusted","peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","detail":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","hash":"00ff"}""",
        ["LogVerification"] = """{"ok":false,"entries":12,"brokenSeq":7,"reason":"hash mismatch","headSeq":12,"headHash":"abcd"}""",
        ["LogVerification.defaults"] = """{"ok":true,"entries":0,"brokenSeq":null,"reason":null,"headSeq":0,"headHash":""}""",
        ["DiscoveredPeerInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","fingerprint":"AB:CD","address":"192.168.1.2:4001","lastSeen":"2026-12-04T01:02:03.456+00:00","state":"discovered"}""",
        ["ErrorInfo"] = """{"error":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","kind":"invalidInput"}""",
        ["ShareInfo"] = """{"path":"/home/zo\u00EB/share","files":3,"bytes":1024,"indexing":true,"indexedBytes":512,"totalBytes":2048,"audience":"friends,12D3KooW"}""",
        ["ShareInfo.defaults"] = """{"path":"/s","files":0,"bytes":0,"indexing":false,"indexedBytes":0,"totalBytes":0,"audience":"all"}""",
        ["ShareAddInfo"] = """{"path":"/s","files":5,"indexed":3,"unchanged":1,"removed":1,"bytesHashed":4096,"failed":["bad\u003Cfile\u003E"],"skipped":2}""",
        ["SearchHitInfo"] = """{"contentId":"b3:abc","name":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","size":77,"peers":["12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"]}""",
        ["DownloadInfo"] = """{"contentId":"b3:abc","name":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","state":"quarantined","bytesDone":5,"bytesTotal":10,"bytesPerSecond":1234.5,"peers":2,"chunkRequests":9,"resumedChunks":1,"finished":true,"reason":"done","path":"/q/a","quarantineId":42}""",
        ["DownloadInfo.nulls"] = """{"contentId":"b3:abc","name":null,"state":"running","bytesDone":0,"bytesTotal":0,"bytesPerSecond":0,"peers":0,"chunkRequests":0,"resumedChunks":0,"finished":false,"reason":null,"path":null,"quarantineId":null}""",
        ["QuarantineInfo"] = """{"id":42,"contentId":"b3:abc","name":"Zo\u00EB\u0027s \u003Cdir\u003E \u0026 \u0022quotes\u0022 \u002B1\t\u00E9","state":"held","reason":"unsigned","size":10,"publisher":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","sources":["12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"],"verified":true,"path":"/q/a","releasedPath":"/out/a","created":"2026-12-04T01:02:03.456+00:00","updated":"2026-12-04T03:04:05.1234567+02:00"}""",
        ["QuarantineInfo.nulls"] = """{"id":1,"contentId":"b3:abc","name":"a","state":"held","reason":null,"size":0,"publisher":null,"sources":[],"verified":false,"path":null,"releasedPath":null,"created":"2026-12-04T01:02:03.456+00:00","updated":"2026-12-04T01:02:03.456+00:00"}""",
        ["ShareRequest"] = """{"path":"/s","with":"friends","includeHidden":true}""",
        ["ShareRequest.defaults"] = """{"path":"/s","with":null,"includeHidden":false}""",
        ["DownloadRequest"] = """{"contentId":"b3:abc","outDir":"/out"}""",
        ["DownloadRequest.nulls"] = """{"contentId":"b3:abc","outDir":null}""",
        ["ReleaseRequest"] = """{"to":"/out"}""",
        ["ReleaseRequest.nulls"] = """{"to":null}""",
        ["GroupMemberInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"alice","state":"trusted","fingerprint":"AB:CD"}""",
        ["GroupInfo"] = """{"name":"friends","members":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"alice","state":"trusted","fingerprint":"AB:CD"},{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"state":"pending","fingerprint":"EF"}],"created":"2026-12-04T03:04:05.1234567+02:00"}""",
        ["GroupCreateRequest"] = """{"name":"friends"}""",
        ["GroupMembersRequest"] = """{"peerIds":["12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","12D3KooWx"]}""",
        ["GroupMembersResult"] = """{"group":"friends","changed":2}""",
        ["ShareAudienceRequest"] = """{"path":"/s","with":"all"}""",
        ["ShareAudienceInfo"] = """{"path":"/s","audience":"friends","changed":true}""",
    };

    /// <summary>
    /// Where the server's answer differs from <see cref="Pinned"/>: ASP.NET Core's HTTP JSON settings escape only what
    /// JSON requires (<c>JavaScriptEncoder.UnsafeRelaxedJsonEscaping</c>), the client's settings escape HTML-sensitive
    /// and non-ASCII characters too. Error bodies are written with the client's settings.
    /// </summary>
    private static readonly Dictionary<string, string> ServerPinned = new(StringComparer.Ordinal)
    {
        ["ConnectionInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"Zoë's <dir> & \"quotes\" +1\té","direction":"inbound","since":"2026-12-04T01:02:03.456+00:00","bytesSent":123456789012,"bytesReceived":42,"sas":"alpha bravo charlie","remote":"127.0.0.1:4001","path":"relayed","relay":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}""",
        ["NodeStatus"] = """{"running":true,"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","fingerprint":"AB:CD:EF","listen":["127.0.0.1:4001","[::1]:4001"],"discovery":"on","connections":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"Zoë's <dir> & \"quotes\" +1\té","direction":"inbound","since":"2026-12-04T01:02:03.456+00:00","bytesSent":123456789012,"bytesReceived":42,"sas":"alpha bravo charlie","remote":"127.0.0.1:4001","path":"relayed","relay":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}],"transfers":[{"id":"t1","contentId":"b3:abc","name":null,"direction":"download","state":"running","bytesDone":10,"bytesTotal":20,"peers":3}],"handshakes":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"sas":"delta echo","time":"2026-12-04T03:04:05.1234567+02:00","direction":"outbound","ended":"refused"}],"refusingUs":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"bob","lastRefusal":"2026-12-04T01:02:03.456+00:00","refusals":7,"nextAttempt":"2026-12-04T03:04:05.1234567+02:00"}],"reachability":[{"address":"/ip4/127.0.0.1/tcp/4001","state":"reachable","source":"listen","advertised":true,"checked":null}],"portMapping":"upnp"}""",
        ["PeerInfo"] = """{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":"Zoë's <dir> & \"quotes\" +1\té","state":"blocked","addresses":["/ip4/10.0.0.1/tcp/1","host.example:4001"],"fingerprint":"AB:CD","firstSeen":"2026-12-04T01:02:03.456+00:00","lastSeen":"2026-12-04T03:04:05.1234567+02:00","blockReason":"why","connected":true,"refusingUs":true,"refusedAt":"2026-12-04T03:04:05.1234567+02:00"}""",
        ["BlockRequest"] = """{"value":"10.0.0.0/8","reason":"Zoë's <dir> & \"quotes\" +1\té"}""",
        ["RenameRequest"] = """{"name":"Zoë's <dir> & \"quotes\" +1\té"}""",
        ["BlockedContentInfo"] = """{"contentId":"b3:def","reason":"Zoë's <dir> & \"quotes\" +1\té","time":"2026-12-04T01:02:03.456+00:00"}""",
        ["BlocklistInfo"] = """{"peers":[{"peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","name":null,"reason":"spam","time":"2026-12-04T01:02:03.456+00:00"}],"addresses":[{"cidr":"10.0.0.0/8","reason":null,"time":"2026-12-04T03:04:05.1234567+02:00"}],"content":[{"contentId":"b3:def","reason":"Zoë's <dir> & \"quotes\" +1\té","time":"2026-12-04T01:02:03.456+00:00"}]}""",
        ["SettingInfo"] = """{"key":"discovery","value":"on","isDefault":false,"description":"LAN beacons <on|off>"}""",
        ["LogEntryInfo"] = """{"seq":9223372036854775807,"time":"2026-12-04T03:04:05.1234567+02:00","event":"peer.trusted","peerId":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","detail":"Zoë's <dir> & \"quotes\" +1\té","hash":"00ff"}""",
        ["ErrorInfo"] = """{"error":"Zoë's <dir> & \"quotes\" +1\té","kind":"invalidInput"}""",
        ["ShareInfo"] = """{"path":"/home/zoë/share","files":3,"bytes":1024,"indexing":true,"indexedBytes":512,"totalBytes":2048,"audience":"friends,12D3KooW"}""",
        ["ShareAddInfo"] = """{"path":"/s","files":5,"indexed":3,"unchanged":1,"removed":1,"bytesHashed":4096,"failed":["bad<file>"],"skipped":2}""",
        ["SearchHitInfo"] = """{"contentId":"b3:abc","name":"Zoë's <dir> & \"quotes\" +1\té","size":77,"peers":["12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"]}""",
        ["DownloadInfo"] = """{"contentId":"b3:abc","name":"Zoë's <dir> & \"quotes\" +1\té","state":"quarantined","bytesDone":5,"bytesTotal":10,"bytesPerSecond":1234.5,"peers":2,"chunkRequests":9,"resumedChunks":1,"finished":true,"reason":"done","path":"/q/a","quarantineId":42}""",
        ["QuarantineInfo"] = """{"id":42,"contentId":"b3:abc","name":"Zoë's <dir> & \"quotes\" +1\té","state":"held","reason":"unsigned","size":10,"publisher":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo","sources":["12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"],"verified":true,"path":"/q/a","releasedPath":"/out/a","created":"2026-12-04T01:02:03.456+00:00","updated":"2026-12-04T03:04:05.1234567+02:00"}""",
    };

    public static TheoryData<string> SampleNames => new(ControlWireSamples.All.Select(s => s.Name));

    private static object Sample(string name) => ControlWireSamples.All.Single(s => s.Name == name).Value;

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void The_client_settings_write_and_read_each_record_as_pinned(string name)
    {
        var value = Sample(name);
        var expected = Pinned[name];
        Assert.Equal(expected, JsonSerializer.Serialize(value, value.GetType(), NodeControl.Json));
        var read = JsonSerializer.Deserialize(expected, value.GetType(), NodeControl.Json);
        Assert.NotNull(read);
        Assert.Equal(expected, JsonSerializer.Serialize(read, value.GetType(), NodeControl.Json));
    }

    [Fact]
    public void Every_public_record_of_the_contract_has_a_pinned_sample()
    {
        var contract = typeof(NodeControl).Assembly.GetExportedTypes()
            .Where(t => t.Namespace == typeof(NodeControl).Namespace && t.GetMethod("<Clone>$") is not null)
            .Select(t => t.Name)
            .ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(contract);
        var sampled = ControlWireSamples.All.Select(s => s.Value.GetType().Name).ToHashSet(StringComparer.Ordinal);
        Assert.Empty(contract.Except(sampled));
        Assert.Equal(ControlWireSamples.All.Count, Pinned.Count);
        Assert.All(ControlWireSamples.All, s => Assert.True(Pinned.ContainsKey(s.Name), s.Name));
    }

    [Fact]
    public void No_record_of_the_contract_has_an_enum_member()
    {
        // States and error kinds go out as camelCase strings. An enum member would need a generic per-enum converter
        // (JsonStringEnumConverter<T> with the camelCase policy) on it, or it would be written as a number.
        var enums = typeof(NodeControl).Assembly.GetExportedTypes()
            .Where(t => t.Namespace == typeof(NodeControl).Namespace && t.GetMethod("<Clone>$") is not null)
            .SelectMany(t => t.GetProperties())
            .Where(p => (p.PropertyType.IsGenericType ? p.PropertyType.GetGenericArguments() : [p.PropertyType]).Any(a => a.IsEnum))
            .Select(p => $"{p.DeclaringType!.Name}.{p.Name}");
        Assert.Empty(enums);
    }

    [Fact]
    public async Task The_server_writes_and_reads_each_record_as_pinned()
    {
        await using var fixture = await ControlFixture.StartAsync(endpointGroups: [MapSamples]);
        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        foreach (var (name, _) in ControlWireSamples.All)
        {
            using var get = await http.GetAsync(new Uri($"v1/wire/{name}", UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal("application/json; charset=utf-8", get.Content.Headers.ContentType?.ToString());
            var expected = ServerPinned.GetValueOrDefault(name, Pinned[name]);
            Assert.Equal(expected, await get.Content.ReadAsStringAsync());

            using var body = new StringContent(Pinned[name], Encoding.UTF8, "application/json");
            using var echo = await http.PostAsync(new Uri($"v1/wire/{name}", UriKind.Relative), body);
            var text = await echo.Content.ReadAsStringAsync();
            Assert.True(echo.StatusCode == HttpStatusCode.OK, $"{name}: {(int)echo.StatusCode} {text}");
            Assert.Equal(expected, text);
        }
    }

    [Theory]
    // Web defaults: property names in any case, numbers in strings.
    [InlineData("GroupMembersRequest", """{"PEERIDS":["a"]}""", """{"peerIds":["a"]}""")]
    [InlineData("PingRequest", """{"Address":"a","count":"3"}""", """{"address":"a","count":3}""")]
    // Unknown keys are ignored; missing ones take the parameter's default (null, false, or the record's default).
    [InlineData("ShareRequest", """{"path":"/s","extra":{"x":[1]}}""", """{"path":"/s","with":null,"includeHidden":false}""")]
    [InlineData("AddPeerRequest", """{"peerId":"p"}""", """{"peerId":"p","addresses":null,"name":null,"trust":false}""")]
    public async Task The_server_reads_request_bodies_as_leniently_as_before(string name, string body, string expected)
    {
        await using var fixture = await ControlFixture.StartAsync(endpointGroups: [MapSamples]);
        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var echo = await http.PostAsync(new Uri($"v1/wire/{name}", UriKind.Relative), content);
        Assert.Equal(expected, await echo.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("GET", "v1/nothing-here", null, 404, """{"error":"no such endpoint: GET /v1/nothing-here","kind":"notFound"}""")]
    [InlineData("POST", "v1/blocklist/content", "{not json", 400,
        """{"error":"bad request: Failed to read parameter \u0022BlockRequest request\u0022 from the request body as JSON.","kind":"invalidInput"}""")]
    [InlineData("POST", "v1/peers", """{"peerId":"12D3KooWnotapeer","trust":"yes"}""", 400,
        """{"error":"bad request: Failed to read parameter \u0022AddPeerRequest request\u0022 from the request body as JSON.","kind":"invalidInput"}""")]
    [InlineData("POST", "v1/ping", """{"address":"x","count":"many"}""", 400,
        """{"error":"bad request: Failed to read parameter \u0022PingRequest request\u0022 from the request body as JSON.","kind":"invalidInput"}""")]
    [InlineData("POST", "v1/peers/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo/trust", null, 404,
        """{"error":"peer 12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo is not known","kind":"notFound"}""")]
    public async Task Error_bodies_are_as_pinned(string method, string path, string? body, int status, string expected)
    {
        await using var fixture = await ControlFixture.StartAsync();
        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(path, UriKind.Relative));
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }
        using var response = await http.SendAsync(request);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        Assert.Equal(expected, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_real_endpoints_answer_what_the_reflection_serializer_wrote()
    {
        await using var fixture = await ControlFixture.StartAsync();
        var db = fixture.Node.Db;
        using var friend = Core.Identity.NodeIdentity.Generate();
        using var stranger = Core.Identity.NodeIdentity.Generate();
        db.Trust.AddPeer(friend.PeerId, "Zoë's <friend>", trusted: true);
        db.Trust.AddPeer(stranger.PeerId, null, trusted: false);
        var service = fixture.Server.Service;
        await service.BlockContentAsync("b3:" + new string('a', 64), "spam & <junk>", CancellationToken.None);
        await service.BlockAddressAsync("10.1.0.0/16", null, CancellationToken.None);
        await service.SetConfigAsync("max-connections", "12", CancellationToken.None);
        var groups = new GroupControlService(db);
        await groups.CreateGroupAsync("friends", CancellationToken.None);
        await groups.AddGroupMembersAsync("friends", [friend.PeerId.Text], CancellationToken.None);

        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        var ct = CancellationToken.None;
        await AssertSameAsync(http, "v1/status", await service.GetStatusAsync(ct));
        await AssertSameAsync(http, "v1/peers", await service.ListPeersAsync(null, ct));
        await AssertSameAsync(http, "v1/peers?state=trusted", await service.ListPeersAsync("trusted", ct));
        await AssertSameAsync(http, "v1/peers/pending", await service.ListPeersAsync("pending", ct));
        await AssertSameAsync(http, "v1/discovered", await service.ListDiscoveredAsync(ct));
        await AssertSameAsync(http, "v1/blocklist", await service.GetBlocklistAsync(ct));
        await AssertSameAsync(http, "v1/config", await service.ListConfigAsync(ct));
        await AssertSameAsync(http, "v1/config/max-connections", await service.GetConfigAsync("max-connections", ct));
        await AssertSameAsync(http, "v1/log", await service.GetLogAsync(null, null, ct));
        await AssertSameAsync(http, "v1/log?limit=2", await service.GetLogAsync(null, 2, ct));
        await AssertSameAsync(http, "v1/log/verify", await service.VerifyLogAsync(ct));
        await AssertSameAsync(http, "v1/groups", await groups.ListGroupsAsync(ct));
    }

    [Fact]
    public void The_settings_have_no_reflection_fallback_and_fail_loudly_on_an_unlisted_type()
    {
        Assert.True(NodeControl.Json.IsReadOnly);
        Assert.DoesNotContain(NodeControl.Json.TypeInfoResolverChain, r => r is System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver);
        Assert.Throws<NotSupportedException>(() => JsonSerializer.Serialize(new NotInTheContract("x"), NodeControl.Json));
        Assert.Throws<NotSupportedException>(() => JsonSerializer.Serialize(new { id = 1 }, NodeControl.Json));
    }

    /// <summary>The API's settings before session 9, on the reflection serializer: what the wire looked like.</summary>
    private static readonly JsonSerializerOptions Before = CreateBefore();

    private static JsonSerializerOptions CreateBefore()
    {
        // ASP.NET Core's HTTP JSON defaults (the relaxed encoder) with the API's naming and enum converter.
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        options.TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver();
        options.MakeReadOnly();
        return options;
    }

    private static async Task AssertSameAsync<T>(HttpClient http, string path, T inProcess)
    {
        var answer = await http.GetStringAsync(new Uri(path, UriKind.Relative));
        Assert.Equal(JsonSerializer.Serialize(inProcess, Before), answer);
    }

    internal static void MapSamples(IEndpointRouteBuilder v1)
    {
        var map = typeof(ControlWireFormatTests).GetMethod(nameof(MapSample), BindingFlags.NonPublic | BindingFlags.Static)!;
        foreach (var (name, value) in ControlWireSamples.All)
        {
            map.MakeGenericMethod(value.GetType()).Invoke(null, [v1, name, value]);
        }
    }

    private static void MapSample<T>(IEndpointRouteBuilder v1, string name, T value)
    {
        v1.MapGet($"/wire/{name}", () => value);
        v1.MapPost($"/wire/{name}", (T body) => body);
    }

    private sealed record NotInTheContract(string Id);
}
