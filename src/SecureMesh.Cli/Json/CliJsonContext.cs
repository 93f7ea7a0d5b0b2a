using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using SecureMesh.Cli.Commands;
using SecureMesh.Node.Backup;
using SecureMesh.Node.Control;

namespace SecureMesh.Cli.Json;

/// <summary>
/// The metadata of every <c>--json</c> output, generated at build time: no reflection, so the output is the same in a
/// trimmed or Native AOT build, and an output type missing here does not compile (<see cref="CliContext.WriteJson{T}"/>
/// takes its <see cref="System.Text.Json.Serialization.Metadata.JsonTypeInfo{T}"/>). The layout is the one the CLI has
/// always printed: camelCase keys, indented, nulls written, non-ASCII text as it is (escaped for the terminal afterwards).
/// No output holds an enum today; one added must get a <see cref="JsonStringEnumConverter{TEnum}"/> with the camelCase
/// policy in <see cref="Output"/>'s options (a test fails on an enum written as a number).
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(IdentityJson))]
[JsonSerializable(typeof(IEnumerable<SettingInfo>), TypeInfoPropertyName = "Settings")]
[JsonSerializable(typeof(ConfigValue))]
[JsonSerializable(typeof(ConfigSetResult))]
[JsonSerializable(typeof(NodeStatus))]
[JsonSerializable(typeof(IEnumerable<PeerInfo>), TypeInfoPropertyName = "Peers")]
[JsonSerializable(typeof(PeerStateJson))]
[JsonSerializable(typeof(ConnectionInfo))]
[JsonSerializable(typeof(PingResult))]
[JsonSerializable(typeof(BlocklistInfo))]
[JsonSerializable(typeof(IEnumerable<LogEntryInfo>), TypeInfoPropertyName = "LogEntries")]
[JsonSerializable(typeof(LogVerification))]
[JsonSerializable(typeof(ShareResultJson))]
[JsonSerializable(typeof(ShareAudienceInfo))]
[JsonSerializable(typeof(ShareListJson))]
[JsonSerializable(typeof(SkippedListJson))]
[JsonSerializable(typeof(PathRemovedJson))]
[JsonSerializable(typeof(IEnumerable<GroupInfo>), TypeInfoPropertyName = "Groups")]
[JsonSerializable(typeof(GroupInfo))]
[JsonSerializable(typeof(GroupMembersResult))]
[JsonSerializable(typeof(GroupDeletedJson))]
[JsonSerializable(typeof(IEnumerable<TransferJson>), TypeInfoPropertyName = "Transfers")]
[JsonSerializable(typeof(TransferCancelledJson))]
[JsonSerializable(typeof(IEnumerable<SearchHitJson>), TypeInfoPropertyName = "SearchHits")]
[JsonSerializable(typeof(IEnumerable<QuarantineJson>), TypeInfoPropertyName = "QuarantineItems")]
[JsonSerializable(typeof(QuarantineJson))]
[JsonSerializable(typeof(BackupOfferJson))]
[JsonSerializable(typeof(IEnumerable<BackupOfferEntryJson>), TypeInfoPropertyName = "BackupOffers")]
[JsonSerializable(typeof(BackupRevokedJson))]
[JsonSerializable(typeof(BackupAddJson))]
[JsonSerializable(typeof(IEnumerable<BackupListEntryJson>), TypeInfoPropertyName = "BackupList")]
[JsonSerializable(typeof(IEnumerable<BackupShareStatus>), TypeInfoPropertyName = "BackupStatus")]
[JsonSerializable(typeof(IEnumerable<BackupVersionInfo>), TypeInfoPropertyName = "BackupVersions")]
[JsonSerializable(typeof(IEnumerable<BackupCheckJson>), TypeInfoPropertyName = "BackupChecks")]
[JsonSerializable(typeof(BackupOutcomeJson))]
[JsonSerializable(typeof(RestoreJson))]
[JsonSerializable(typeof(DemoSummary))]
// get --json is written by hand (GetOutput.WriteTo, no serializer at a one-off's end); its metadata is here for the test
// that holds the two together.
[JsonSerializable(typeof(GetOutput))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    /// <summary>The context the commands write with; its <see cref="JsonSerializerContext.Options"/> are the layout above.</summary>
    public static CliJsonContext Output { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
