; Installer of Ivoris → HubSpot Sync for Windows (NSIS 3, built by
; packaging/windows/build.sh, which defines VERSION, EXE, LICENSES, ICON
; and OUTFILE).
;
; Per user, without administrator rights: the program goes to
; %LOCALAPPDATA%\Programs\ivoris-hubspot-sync, the start-menu entry and the
; uninstall entry to the user's profile. The ledger, settings and logs live
; in %APPDATA%\ivoris-hubspot-sync and are kept by the uninstaller unless
; „Daten löschen“ is chosen (silent: /PURGE).
;
; Silent use:  setup.exe /S [/TASK] [/D=C:\path]
;              Uninstall.exe /S [/PURGE]
; /TASK also creates the scheduled task „Automatisch synchronisieren“.

; A 64-bit installer for the 64-bit program; it also runs under Wine
; without 32-bit support (the smoke test).
Target amd64-unicode
ManifestDPIAware true
SetCompressor /SOLID lzma

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"

!define APP_ID "ivoris-hubspot-sync"
!define APP_NAME "Ivoris → HubSpot Sync"
!define EXE_NAME "ivoris-hubspot-sync.exe"
!define TASK_NAME "Ivoris-HubSpot-Sync"
; Every 15 minutes; a run that finds another one active ends at once (exit 4).
!define TASK_MINUTES 15
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP_ID}"
!define SHORTCUT "$SMPROGRAMS\${APP_NAME}.lnk"

Name "${APP_NAME}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${APP_ID}"
InstallDirRegKey HKCU "Software\${APP_ID}" "InstallDir"
BrandingText "${APP_NAME} ${VERSION}"

VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=0 "ProductName" "${APP_NAME}"
VIAddVersionKey /LANG=0 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "FileDescription" "${APP_NAME} – Setup"
VIAddVersionKey /LANG=0 "LegalCopyright" "Proprietäre Software / proprietary software"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${EXE_NAME}"

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

; The first language is the default where Windows speaks neither.
!insertmacro MUI_LANGUAGE "German"
!insertmacro MUI_LANGUAGE "English"

LangString SecProgram ${LANG_GERMAN} "Programm"
LangString SecProgram ${LANG_ENGLISH} "Program"
LangString SecTask ${LANG_GERMAN} "Automatisch synchronisieren (alle ${TASK_MINUTES} Minuten)"
LangString SecTask ${LANG_ENGLISH} "Sync automatically (every ${TASK_MINUTES} minutes)"
LangString SecProgramRemove ${LANG_GERMAN} "Programm entfernen"
LangString SecProgramRemove ${LANG_ENGLISH} "Remove the program"
LangString SecData ${LANG_GERMAN} "Auch Ledger, Einstellungen und Protokolle löschen"
LangString SecData ${LANG_ENGLISH} "Also delete the ledger, settings and logs"
LangString TaskFailed ${LANG_GERMAN} "Die geplante Aufgabe konnte nicht angelegt werden (schtasks: $0)."
LangString TaskFailed ${LANG_ENGLISH} "The scheduled task could not be created (schtasks: $0)."

Section "!$(SecProgram)" SecProgramId
  SectionIn RO
  SetShellVarContext current
  SetOutPath "$INSTDIR"
  File "/oname=${EXE_NAME}" "${EXE}"
  SetOutPath "$INSTDIR\licenses"
  File "/oname=crates.tsv" "${LICENSES}/crates.tsv"
  SetOutPath "$INSTDIR\licenses\fonts"
  File "${LICENSES}/fonts/*.txt"
  SetOutPath "$INSTDIR"

  WriteUninstaller "$INSTDIR\Uninstall.exe"
  CreateShortcut "${SHORTCUT}" "$INSTDIR\${EXE_NAME}" "" "$INSTDIR\${EXE_NAME}" 0

  WriteRegStr HKCU "Software\${APP_ID}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${EXE_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" "$0"
SectionEnd

; The headless sync on a schedule, as the logged-in user (no password is
; stored, no admin rights needed). Secrets come from the credential store.
Section /o "$(SecTask)" SecTaskId
  nsExec::ExecToLog 'schtasks /Create /F /SC MINUTE /MO ${TASK_MINUTES} /TN "${TASK_NAME}" /TR "\"$INSTDIR\${EXE_NAME}\" sync"'
  Pop $0
  ${If} $0 != 0
    DetailPrint "$(TaskFailed)"
    MessageBox MB_ICONEXCLAMATION|MB_OK "$(TaskFailed)" /SD IDOK
  ${EndIf}
SectionEnd

Function .onInit
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/TASK" $R1
  ${IfNot} ${Errors}
    SectionSetFlags ${SecTaskId} ${SF_SELECTED}
  ${EndIf}
FunctionEnd

Section "un.$(SecProgramRemove)" UnSecProgramId
  SectionIn RO
  SetShellVarContext current
  ; Not there when it was never created; that is fine.
  nsExec::ExecToLog 'schtasks /Delete /F /TN "${TASK_NAME}"'
  Pop $0
  Delete "${SHORTCUT}"
  Delete "$INSTDIR\${EXE_NAME}"
  RMDir /r "$INSTDIR\licenses"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\${APP_ID}"
SectionEnd

; Off unless chosen: the ledger is what keeps HubSpot free of duplicates.
; Secrets stay in the Windows credential manager either way.
Section /o "un.$(SecData)" UnSecDataId
  SetShellVarContext current
  RMDir /r "$APPDATA\${APP_ID}"
SectionEnd

Function un.onInit
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/PURGE" $R1
  ${IfNot} ${Errors}
    SectionSetFlags ${UnSecDataId} ${SF_SELECTED}
  ${EndIf}
FunctionEnd
